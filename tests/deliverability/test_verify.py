"""Verification against a real DNS server (the sandbox, over UDP), never mocked resolver calls."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.resolver
import pytest

from deliverability.dns.providers import LocalDnsProvider
from deliverability.dns.records import (
    DnsRecord,
    DomainDnsSpec,
    RecordPurpose,
    generate_domain_records,
)
from deliverability.dns.verify import (
    CheckStatus,
    RecordCheck,
    make_resolver,
    parse_dmarc,
    verify_records,
)
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneRecord

from .conftest import IPS

DOMAIN = "acme-mail.test"


@pytest.fixture
def records(spec: DomainDnsSpec, sandbox_dns: SandboxDnsServer) -> list[DnsRecord]:
    """The domain fully and correctly published, with the mail host resolving to its IPs."""
    generated = generate_domain_records(spec)
    provider = LocalDnsProvider(sandbox_dns.store)
    provider.publish(DOMAIN, generated)
    provider.set_address("mx1.pm.test", IPS)
    return generated


def _check(
    records: list[DnsRecord], purpose: RecordPurpose, resolver: dns.resolver.Resolver
) -> RecordCheck:
    checks = verify_records([r for r in records if r.purpose == purpose], resolver=resolver)
    return checks[0]


def _replace(server: SandboxDnsServer, name: str, rtype: str, *values: str) -> None:
    server.store.remove(name, rtype)
    for value in values:
        server.store.add(
            ZoneRecord.make(name, rtype, value, priority=10 if rtype == "MX" else None)
        )


def test_it_reports_every_record_ok_when_all_are_published(
    records: list[DnsRecord], resolver: dns.resolver.Resolver
) -> None:
    checks = verify_records(records, resolver=resolver)
    assert [(c.record.purpose, c.status) for c in checks] == [
        (r.purpose, CheckStatus.OK) for r in records
    ]
    dmarc = next(c for c in checks if c.record.purpose == RecordPurpose.DMARC)
    assert dmarc.message == "Policy p=none."


def test_it_joins_dkim_split_strings_before_comparing(
    records: list[DnsRecord], resolver: dns.resolver.Resolver
) -> None:
    dkim = next(r for r in records if r.purpose == RecordPurpose.DKIM)
    (rdata,) = resolver.resolve(dkim.name, "TXT")
    assert len(rdata.strings) == 2  # the server really sends two character-strings
    check = _check(records, RecordPurpose.DKIM, resolver)
    assert check.status == CheckStatus.OK
    assert check.found == [dkim.value]


def test_it_reports_a_missing_dmarc_record(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    sandbox_dns.store.remove(f"_dmarc.{DOMAIN}")
    check = _check(records, RecordPurpose.DMARC, resolver)
    assert check.status == CheckStatus.MISSING
    assert "the name does not exist" in check.message
    assert "v=DMARC1; p=none; rua=mailto:dmarc@reports.pm.test" in check.message


def test_it_reports_spf_without_our_ip_as_wrong_with_the_merged_fix(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    _replace(sandbox_dns, DOMAIN, "TXT", "v=spf1 ip4:203.0.113.10 include:_spf.pm.test -all")
    sandbox_dns.store.add(ZoneRecord.make("_spf.pm.test", "TXT", "v=spf1 ip4:198.51.100.0/24 -all"))
    check = _check(records, RecordPurpose.SPF, resolver)
    assert check.status == CheckStatus.WRONG
    assert check.found == ["v=spf1 ip4:203.0.113.10 include:_spf.pm.test -all"]
    assert "does not authorise 203.0.113.11" in check.message
    assert check.message.endswith(
        "v=spf1 ip4:203.0.113.10 include:_spf.pm.test ip4:203.0.113.11 ~all"
    )


def test_it_accepts_spf_covering_our_ips_through_a_network(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    _replace(sandbox_dns, DOMAIN, "TXT", "v=spf1 ip4:203.0.113.0/24 -all", "google-site=x")
    assert _check(records, RecordPurpose.SPF, resolver).status == CheckStatus.OK


def test_it_reports_multiple_spf_records_as_wrong(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    sandbox_dns.store.add(ZoneRecord.make(DOMAIN, "TXT", "v=spf1 include:_spf.google.com ~all"))
    check = _check(records, RecordPurpose.SPF, resolver)
    assert check.status == CheckStatus.WRONG
    assert len(check.found) == 2
    assert "2 SPF records" in check.message
    assert "include:_spf.google.com" in check.message.split("Replace them with one:")[1]


def test_it_reports_spf_needing_more_than_ten_lookups(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    # Our IPs are listed, but the includes (nested two deep) cost 12 lookups.
    nested = " ".join(f"include:n{i}.pm.test" for i in range(6))
    _replace(
        sandbox_dns,
        DOMAIN,
        "TXT",
        "v=spf1 ip4:203.0.113.10 ip4:203.0.113.11 include:outer.pm.test mx a ~all",
    )
    sandbox_dns.store.add(ZoneRecord.make("outer.pm.test", "TXT", f"v=spf1 {nested} ~all"))
    for i in range(6):
        sandbox_dns.store.add(ZoneRecord.make(f"n{i}.pm.test", "TXT", "v=spf1 a -all"))
    check = _check(records, RecordPurpose.SPF, resolver)
    assert check.status == CheckStatus.WRONG
    assert "needs 15 DNS lookups" in check.message


def test_it_reports_a_dkim_key_mismatch_with_the_key_found(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    dkim = next(r for r in records if r.purpose == RecordPurpose.DKIM)
    _replace(sandbox_dns, dkim.name, "TXT", "v=DKIM1; k=rsa; p=MIIBIjANBgkqOLDKEY")
    check = _check(records, RecordPurpose.DKIM, resolver)
    assert check.status == CheckStatus.WRONG
    assert check.found == ["v=DKIM1; k=rsa; p=MIIBIjANBgkqOLDKEY"]
    assert "differs from the one the mail server signs with" in check.message
    assert check.message.endswith(dkim.value)


def test_it_reports_dmarc_without_our_report_address_and_accepts_stricter_policies(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    name = f"_dmarc.{DOMAIN}"
    _replace(sandbox_dns, name, "TXT", "v=DMARC1; p=reject; rua=mailto:other@example.org")
    check = _check(records, RecordPurpose.DMARC, resolver)
    assert check.status == CheckStatus.WRONG
    assert "reports do not go to dmarc@reports.pm.test" in check.message

    _replace(
        sandbox_dns,
        name,
        "TXT",
        "v=DMARC1; p=quarantine; pct=50; rua=mailto:x@y.test,mailto:DMARC@reports.pm.test!10m",
    )
    check = _check(records, RecordPurpose.DMARC, resolver)
    assert (check.status, check.message) == (CheckStatus.OK, "Policy p=quarantine at pct=50.")

    _replace(sandbox_dns, name, "TXT", "v=DMARC1; p=monitor; rua=mailto:dmarc@reports.pm.test")
    check = _check(records, RecordPurpose.DMARC, resolver)
    assert check.status == CheckStatus.WRONG and "p=monitor is not" in check.message


def test_it_parses_dmarc_policies() -> None:
    policy = parse_dmarc("v=DMARC1;p=Reject; sp=none; rua=mailto:a@b.test!5m, mailto:c@d.test")
    assert (policy.policy, policy.subdomain_policy, policy.rua, policy.pct) == (
        "reject",
        "none",
        ["a@b.test", "c@d.test"],
        100,
    )


def test_it_reports_a_wrong_cname_target_and_an_a_record_in_its_place(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    host = f"track.{DOMAIN}"
    _replace(sandbox_dns, host, "CNAME", "elsewhere.example.org")
    check = _check(records, RecordPurpose.TRACKING, resolver)
    assert (check.status, check.found) == (CheckStatus.WRONG, ["elsewhere.example.org"])
    assert "point it at t.pm.test" in check.message

    _replace(sandbox_dns, host, "CNAME")
    sandbox_dns.store.add(ZoneRecord.make(host, "A", "104.16.0.1"))
    check = _check(records, RecordPurpose.TRACKING, resolver)
    assert (check.status, check.found) == (CheckStatus.WRONG, ["104.16.0.1"])
    assert "DNS only" in check.message


def test_it_reports_mx_priority_and_missing_mx(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    sandbox_dns.store.remove(DOMAIN, "MX")
    sandbox_dns.store.add(ZoneRecord.make(DOMAIN, "MX", "mx1.pm.test", priority=20))
    check = _check(records, RecordPurpose.MX, resolver)
    assert (check.status, check.found) == (CheckStatus.WRONG, ["20 mx1.pm.test"])
    assert "set it to 10" in check.message

    sandbox_dns.store.remove(DOMAIN, "MX")
    check = _check(records, RecordPurpose.MX, resolver)
    # The apex still has TXT records: no MX there is "none found", not a missing name.
    assert check.status == CheckStatus.MISSING and "none found" in check.message


def test_it_checks_ptr_by_reverse_lookup_and_forward_confirmation(
    records: list[DnsRecord], sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    ptr = next(r for r in records if r.purpose == RecordPurpose.PTR)
    _replace(sandbox_dns, ptr.name, "PTR", "vps-123.hostwinds.example")
    check = _check(records, RecordPurpose.PTR, resolver)
    assert (check.status, check.found) == (CheckStatus.WRONG, ["vps-123.hostwinds.example"])
    assert "set it to mx1.pm.test" in check.message

    _replace(sandbox_dns, ptr.name, "PTR", "mx1.pm.test")
    _replace(sandbox_dns, "mx1.pm.test", "A", "203.0.113.99")
    check = _check(records, RecordPurpose.PTR, resolver)
    assert check.status == CheckStatus.WRONG and "does not resolve back" in check.message

    sandbox_dns.store.remove(ptr.name)
    check = _check(records, RecordPurpose.PTR, resolver)
    assert check.status == CheckStatus.MISSING and "203.0.113.10" in check.message


@pytest.fixture
def silent_dns() -> Iterator[str]:
    """A UDP socket that receives queries and never answers: a DNS server that times out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_it_reports_a_timeout_as_could_not_check_not_missing(
    records: list[DnsRecord], silent_dns: str
) -> None:
    resolver = make_resolver([silent_dns], timeout=0.3)
    wanted = (RecordPurpose.SPF, RecordPurpose.DKIM, RecordPurpose.PTR)
    checks = verify_records([r for r in records if r.purpose in wanted], resolver=resolver)
    assert len(checks) == 4
    assert {c.status for c in checks} == {CheckStatus.UNCHECKED}
    assert all(c.message.startswith("Could not check") for c in checks)
