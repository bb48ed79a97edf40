from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from deliverability.dns.records import (
    DkimKeyPair,
    DnsRecordError,
    DomainDnsSpec,
    RecordPurpose,
    RecordType,
    SpfAll,
    build_spf,
    generate_domain_records,
    merge_spf,
    split_txt,
)


def _by_purpose(spec: DomainDnsSpec) -> dict[RecordPurpose, list]:
    out: dict[RecordPurpose, list] = {}
    for record in generate_domain_records(spec):
        out.setdefault(record.purpose, []).append(record)
    return out


def test_it_generates_every_record_a_sending_domain_needs(spec: DomainDnsSpec) -> None:
    records = _by_purpose(spec)
    (mx,) = records[RecordPurpose.MX]
    assert (mx.type, mx.name, mx.value, mx.priority) == (
        RecordType.MX,
        "acme-mail.test",
        "mx1.pm.test",
        10,
    )
    (spf,) = records[RecordPurpose.SPF]
    assert spf.value == "v=spf1 ip4:203.0.113.10 ip4:203.0.113.11 ~all"
    (dkim,) = records[RecordPurpose.DKIM]
    assert dkim.name == "pm1._domainkey.acme-mail.test"
    assert dkim.value == f"v=DKIM1; k=rsa; p={spec.dkim_public_key}"
    (dmarc,) = records[RecordPurpose.DMARC]
    assert (dmarc.name, dmarc.value) == (
        "_dmarc.acme-mail.test",
        "v=DMARC1; p=none; rua=mailto:dmarc@reports.pm.test",
    )
    (auth,) = records[RecordPurpose.DMARC_REPORT_AUTH]
    assert auth.name == "acme-mail.test._report._dmarc.reports.pm.test"
    (cname,) = records[RecordPurpose.TRACKING]
    assert (cname.type, cname.name, cname.value) == (
        RecordType.CNAME,
        "track.acme-mail.test",
        "t.pm.test",
    )
    ptrs = {(r.name, r.value) for r in records[RecordPurpose.PTR]}
    assert ptrs == {
        ("10.113.0.203.in-addr.arpa", "mx1.pm.test"),
        ("11.113.0.203.in-addr.arpa", "mx1.pm.test"),
    }


def test_it_omits_report_authorisation_when_reports_go_to_the_domain_itself(
    spec: DomainDnsSpec,
) -> None:
    spec = DomainDnsSpec(**{**spec.__dict__, "dmarc_rua": "dmarc@acme-mail.test"})
    assert RecordPurpose.DMARC_REPORT_AUTH not in _by_purpose(spec)


def test_it_builds_spf_with_includes_and_hard_fail_on_request() -> None:
    assert build_spf([], includes=["_spf.google.com"]) == "v=spf1 include:_spf.google.com ~all"
    assert (
        build_spf(["192.0.2.1"], includes=["_spf.google.com"], all_=SpfAll.FAIL)
        == "v=spf1 ip4:192.0.2.1 include:_spf.google.com -all"
    )
    with pytest.raises(DnsRecordError):
        build_spf([])


def test_it_merges_an_existing_spf_instead_of_adding_a_second() -> None:
    merged = merge_spf(
        ["v=spf1 include:_spf.google.com ?all", "v=spf1 ip4:198.51.100.7 -all"],
        "v=spf1 ip4:203.0.113.10 ~all",
    )
    assert merged == "v=spf1 include:_spf.google.com ip4:198.51.100.7 ip4:203.0.113.10 ~all"


def test_it_generates_2048_bit_dkim_keys_and_splits_the_txt_at_255_bytes(
    dkim_key: DkimKeyPair,
) -> None:
    public = serialization.load_der_public_key(base64.b64decode(dkim_key.public_key_b64))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    private = serialization.load_pem_private_key(dkim_key.private_key_pem.encode(), None)
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
    strings = split_txt(dkim_key.txt_value)
    assert len(strings) == 2 and all(len(s.encode()) <= 255 for s in strings)
    assert "".join(strings) == dkim_key.txt_value


def test_it_refuses_a_dkim_key_shorter_than_2048_bits(spec: DomainDnsSpec) -> None:
    # A weak key on purpose: the point is that it is refused.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    der = small.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spec = DomainDnsSpec(**{**spec.__dict__, "dkim_public_key": base64.b64encode(der).decode()})
    with pytest.raises(DnsRecordError, match="1024 bits"):
        generate_domain_records(spec)


def test_it_refuses_bad_inputs(spec: DomainDnsSpec) -> None:
    with pytest.raises(DnsRecordError, match="IPv4"):
        generate_domain_records(DomainDnsSpec(**{**spec.__dict__, "sending_ips": ["2001:db8::1"]}))
    with pytest.raises(DnsRecordError, match="not a valid DNS name"):
        generate_domain_records(DomainDnsSpec(**{**spec.__dict__, "domain": "bad..name"}))


def test_it_formats_zone_lines_and_relative_hosts(spec: DomainDnsSpec) -> None:
    records = _by_purpose(spec)
    dkim = records[RecordPurpose.DKIM][0]
    line = dkim.zone_line()
    assert line.startswith('pm1._domainkey.acme-mail.test. 3600 IN TXT "v=DKIM1; k=rsa; p=')
    assert line.count('" "') == 1  # two character-strings
    assert dkim.relative_name("acme-mail.test") == "pm1._domainkey"
    assert records[RecordPurpose.MX][0].relative_name("acme-mail.test") == "@"
    assert records[RecordPurpose.MX][0].zone_line().endswith("IN MX 10 mx1.pm.test.")
