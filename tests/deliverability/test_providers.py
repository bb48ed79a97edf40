"""Publishing through each DNS provider; local end-to-end through the real sandbox DNS."""

from __future__ import annotations

from pathlib import Path

import dns.resolver
import pytest

from deliverability.dns.providers import (
    CloudflareClient,
    CloudflareDnsProvider,
    DnsProviderError,
    LocalDnsProvider,
    ManualDnsProvider,
    PublishAction,
    parse_cloudflare_txt,
)
from deliverability.dns.records import DomainDnsSpec, RecordPurpose, generate_domain_records
from deliverability.dns.verify import CheckStatus, make_resolver, verify_records
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneRecord, ZoneStore, start_sandbox_dns
from tests.fakes.cloudflare import FakeCloudflare

from .conftest import IPS

DOMAIN = "acme-mail.test"


def test_it_publishes_locally_and_then_verifies_ok_end_to_end(
    spec: DomainDnsSpec, sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    records = generate_domain_records(spec)
    provider = LocalDnsProvider(sandbox_dns.store)
    before = verify_records(records, resolver=resolver)
    assert {c.status for c in before} == {CheckStatus.MISSING}

    outcomes = provider.publish(DOMAIN, records)
    provider.set_address("mx1.pm.test", IPS)
    assert {o.action for o in outcomes} == {PublishAction.CREATED}
    assert all(c.ok for c in verify_records(records, resolver=resolver))

    # Publishing again changes nothing.
    assert {o.action for o in provider.publish(DOMAIN, records)} == {PublishAction.UNCHANGED}


def test_it_replaces_conflicting_records_and_keeps_unrelated_ones_locally(
    spec: DomainDnsSpec, sandbox_dns: SandboxDnsServer, resolver: dns.resolver.Resolver
) -> None:
    store = sandbox_dns.store
    store.add(ZoneRecord.make(DOMAIN, "TXT", "v=spf1 include:_spf.old.test ~all"))
    store.add(ZoneRecord.make(DOMAIN, "TXT", "google-site-verification=abc"))
    store.add(ZoneRecord.make(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=reject"))
    records = generate_domain_records(spec)
    outcomes = {
        o.record.purpose: o.action for o in LocalDnsProvider(store).publish(DOMAIN, records)
    }
    assert outcomes[RecordPurpose.SPF] == PublishAction.UPDATED
    assert outcomes[RecordPurpose.DMARC] == PublishAction.UPDATED
    apex_txt = sorted(r.value for r in store.lookup(DOMAIN, "TXT"))
    assert apex_txt == ["google-site-verification=abc", records[1].value]


def test_it_shares_zones_through_a_json_file_between_processes(
    spec: DomainDnsSpec, tmp_path: Path
) -> None:
    path = tmp_path / "zones.json"
    # The server and the provider each hold their own store on the same file, as the sandbox
    # process and a worker do.
    server = start_sandbox_dns("127.0.0.1", 0, ZoneStore(path))
    try:
        records = generate_domain_records(spec)
        LocalDnsProvider(ZoneStore(path)).publish(DOMAIN, records)
        resolver = make_resolver([server.nameserver])
        dkim = next(r for r in records if r.purpose == RecordPurpose.DKIM)
        (check,) = verify_records([dkim], resolver=resolver)
        assert check.ok
        # Over TCP too.
        answer = resolver.resolve(dkim.name, "TXT", tcp=True)
        assert b"".join(answer[0].strings).decode() == dkim.value
    finally:
        server.stop()


def test_it_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        start_sandbox_dns("0.0.0.0", 0)  # noqa: S104 - the refusal is the point


def test_it_gives_manual_instructions_and_publishes_nothing(spec: DomainDnsSpec) -> None:
    records = generate_domain_records(spec)
    outcomes = ManualDnsProvider().publish(DOMAIN, records)
    assert {o.action for o in outcomes} == {PublishAction.MANUAL}
    by_purpose = {o.record.purpose: o.detail for o in outcomes}
    assert by_purpose[RecordPurpose.DMARC] == (
        "Add a TXT record: host _dmarc, value v=DMARC1; p=none; rua=mailto:dmarc@reports.pm.test"
    )
    assert "merge into it instead" in by_purpose[RecordPurpose.SPF]
    assert "reverse DNS (PTR) to mx1.pm.test" in by_purpose[RecordPurpose.PTR]


@pytest.fixture
def cloudflare(fake_cloudflare: FakeCloudflare) -> CloudflareClient:
    return CloudflareClient(fake_cloudflare.token, base_url=fake_cloudflare.url, backoff=0.01)


def test_it_publishes_to_cloudflare_idempotently(
    spec: DomainDnsSpec, fake_cloudflare: FakeCloudflare, cloudflare: CloudflareClient
) -> None:
    zone_id = fake_cloudflare.add_zone(DOMAIN)
    records = generate_domain_records(spec)
    provider = CloudflareDnsProvider(cloudflare)
    outcomes = {o.record.purpose: o.action for o in provider.publish(DOMAIN, records)}
    assert outcomes[RecordPurpose.MX] == PublishAction.CREATED
    assert outcomes[RecordPurpose.TRACKING] == PublishAction.CREATED
    # Not the tenant zone's to hold: PTR (VPS provider) and the report authorisation.
    assert outcomes[RecordPurpose.PTR] == PublishAction.SKIPPED
    assert outcomes[RecordPurpose.DMARC_REPORT_AUTH] == PublishAction.SKIPPED

    (dkim,) = fake_cloudflare.records_named(f"pm1._domainkey.{DOMAIN}", "TXT")
    assert dkim["content"].count('" "') == 1  # stored as two quoted strings
    dkim_record = next(r for r in records if r.purpose == RecordPurpose.DKIM)
    assert parse_cloudflare_txt(dkim["content"]) == dkim_record.value
    (mx,) = fake_cloudflare.records_named(DOMAIN, "MX")
    assert (mx["content"], mx["priority"], mx["zone_id"]) == ("mx1.pm.test", 10, zone_id)
    (cname,) = fake_cloudflare.records_named(f"track.{DOMAIN}", "CNAME")
    assert cname["proxied"] is False

    count = len(fake_cloudflare.records)
    again = provider.publish(DOMAIN, records)
    assert {o.action for o in again} == {PublishAction.UNCHANGED, PublishAction.SKIPPED}
    assert len(fake_cloudflare.records) == count

    provider.unpublish(DOMAIN, records)
    assert fake_cloudflare.records == {}


def test_it_updates_a_changed_spf_on_cloudflare_and_removes_a_second_one(
    spec: DomainDnsSpec, fake_cloudflare: FakeCloudflare, cloudflare: CloudflareClient
) -> None:
    fake_cloudflare.add_zone(DOMAIN)
    records = [r for r in generate_domain_records(spec) if r.purpose == RecordPurpose.SPF]
    for content in ('"v=spf1 ip4:192.0.2.1 ~all"', '"v=spf1 include:x.test ~all"', '"hello"'):
        cloudflare._request(
            "POST",
            f"/zones/{next(iter(fake_cloudflare.zones))}/dns_records",
            body={"type": "TXT", "name": DOMAIN, "content": content, "ttl": 1},
        )
    (outcome,) = CloudflareDnsProvider(cloudflare).publish(DOMAIN, records)
    assert outcome.action == PublishAction.UPDATED
    contents = sorted(r["content"] for r in fake_cloudflare.records_named(DOMAIN, "TXT"))
    assert contents == ['"hello"', f'"{records[0].value}"']


def test_it_finds_the_parent_zone_and_reports_a_missing_one(
    fake_cloudflare: FakeCloudflare, cloudflare: CloudflareClient
) -> None:
    fake_cloudflare.add_zone(DOMAIN)
    assert cloudflare.zone_for(f"mail.{DOMAIN}")["name"] == DOMAIN
    with pytest.raises(DnsProviderError) as excinfo:
        cloudflare.zone_for("other.test")
    assert excinfo.value.permanent


def test_it_does_not_retry_a_bad_cloudflare_token(fake_cloudflare: FakeCloudflare) -> None:
    client = CloudflareClient("wrong", base_url=fake_cloudflare.url, backoff=0.01)
    with pytest.raises(DnsProviderError) as excinfo:
        client.find_zone(DOMAIN)
    assert excinfo.value.permanent and "9109: Invalid access token" in excinfo.value.message
    assert "wrong" not in repr(client)
    assert len(fake_cloudflare.requests) == 1


def test_it_retries_cloudflare_server_errors_then_gives_up_transiently(
    fake_cloudflare: FakeCloudflare, cloudflare: CloudflareClient
) -> None:
    fake_cloudflare.add_zone(DOMAIN)
    fake_cloudflare.fail_next(502, count=2)
    assert cloudflare.find_zone(DOMAIN) is not None
    assert len(fake_cloudflare.requests) == 3
    fake_cloudflare.fail_next(429, count=3)
    with pytest.raises(DnsProviderError) as excinfo:
        cloudflare.find_zone(DOMAIN)
    assert not excinfo.value.permanent
    assert len(fake_cloudflare.requests) == 6
