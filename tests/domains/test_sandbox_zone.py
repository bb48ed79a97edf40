"""Issue 10, item 19: under `make run` the sandbox zone is complete. The demo seeding publishes
the platform's own names (the mail host's addresses, the SPF include, the tracking target), so
the demo domain's SPF, PTR and tracking host verify through the ordinary verification service
against the sandbox DNS server, and tracking links use the domain's own tracking host.

Issue 10, item 9: PTR from one source. Each sending IP's expected PTR is its reverse name as
infrastructure set it (the server's host name, the mail server's EHLO name), forward-confirmed
by an A record; the domain page and the infrastructure page name the same host for an IP."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

import dns.resolver
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings as SettingsWrapper

from campaigns.tracking import links
from deliverability.dns.records import RecordPurpose, reverse_name
from deliverability.models import RecordStatus, SendingDomain
from deliverability.services.domains import run_check
from infrastructure.models import IpAddress
from penguinmails.sandbox.dns import ZoneRecord, ZoneStore, start_sandbox_dns
from tenants.models import Tenant, User
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


@pytest.fixture
def sandbox_settings(settings: SettingsWrapper, tmp_path: Path) -> int:
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA IF EXISTS "t_demo" CASCADE')
        cursor.execute('DROP SCHEMA IF EXISTS "t_warmpool" CASCADE')  # its warm-up partners
    port = _free_port()
    settings.DEBUG = True
    settings.SANDBOX_DNS_PORT = port
    settings.SANDBOX_DNS_ZONES = tmp_path / "zones.json"
    settings.DNS_RESOLVERS = [f"127.0.0.1:{port}"]
    settings.DNS_PROVIDER = "local"
    settings.LOCAL_VPS_STATE_FILE = tmp_path / "vps.json"
    settings.VPS_PROVIDER = "local"
    settings.TRACKING_CUSTOM_HOSTS = True
    settings.TRACKING_CUSTOM_HOST_URL = "http://{host}.localhost:8000"
    return port


def test_the_demo_domain_verifies_spf_ptr_and_its_tracking_host(
    cast: Cast, sandbox_settings: int
) -> None:
    call_command("tenants", "demo", stdout=io.StringIO())
    demo = Tenant.objects.get(slug="demo")
    server = start_sandbox_dns("127.0.0.1", sandbox_settings, ZoneStore(settings.SANDBOX_DNS_ZONES))
    try:
        with schema_context(demo.schema_name):
            domain = SendingDomain.objects.get(name="demo-agency.test")
            result = run_check(domain.pk, tenant=demo)
            assert result is not None
            verdicts = {c.record.purpose: c for c in result.checks}
            for purpose in (RecordPurpose.SPF, RecordPurpose.PTR, RecordPurpose.TRACKING):
                assert verdicts[purpose].ok, (purpose, verdicts[purpose].message)
            assert all(c.ok for c in result.checks), [c.message for c in result.checks if not c.ok]
            domain.refresh_from_db()
            assert domain.status == "verified"
            stored = set(domain.records.values_list("purpose", "status"))
            assert (RecordPurpose.PTR.value, RecordStatus.OK.value) in stored
        # The tracking host resolves to loopback (through its CNAME to the platform's target).
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], sandbox_settings
        answer = resolver.resolve(domain.tracking_host, "A")
        assert {r.address for r in answer} == {"127.0.0.1"}
        # The platform's SPF include lists the sending IPs, which the mail host resolves to.
        ips = set(IpAddress.objects.filter(tenant=demo).values_list("address", flat=True))
        mail_host = {r.address for r in resolver.resolve(settings.SENDING_MAIL_HOST, "A")}
        assert ips and ips <= mail_host
        (spf,) = resolver.resolve(settings.SENDING_SPF_INCLUDE, "TXT")
        assert all(f"ip4:{ip}" in b"".join(spf.strings).decode() for ip in ips)
    finally:
        server.stop()
    # Links use the verified tracking host, in a form a browser on this machine reaches.
    base = links.base_url(domain.tracking_host, verified=True)
    assert base == "http://track.demo-agency.test.localhost:8000"


def _ptr_rows(page: str) -> dict[str, tuple[str, str]]:
    """The domain page's PTR rows: reverse name -> (expected value, status)."""
    rows = {}
    for row in re.findall(r'<tr id="record-ptr-\d+">(.*?)</tr>', page, re.S):
        name = re.search(r'<code class="record-name">([^<]+)</code>', row)
        value = re.search(r'<code id="value-\d+" class="record-value"[^>]*>([^<]+)</code>', row)
        status = re.search(r'data-record-status="([^"]+)"', row)
        assert name and value and status, row
        rows[name.group(1)] = (value.group(1).strip(), status.group(1))
    return rows


def test_the_domain_page_expects_the_reverse_name_the_infrastructure_page_shows(
    cast: Cast, sandbox_settings: int
) -> None:
    call_command("tenants", "demo", stdout=io.StringIO())
    demo = Tenant.objects.get(slug="demo")
    owner = User.objects.get(email="demo@example.com")
    with schema_context(demo.schema_name):
        domain = SendingDomain.objects.get(name="demo-agency.test")
    assert domain.status == "verified"

    # What infrastructure shows for each IP (API and page): the server's host name.
    api = client_for(owner, demo, api=True)
    infra = api.get("/api/v1/infrastructure").json()
    shown = {ip["address"]: ip["ptr_hostname"] for ip in infra["ips"] if ip["ptr_set"]}
    servers = {s["hostname"] for s in infra["servers"]}
    assert shown and set(shown.values()) <= servers
    assert settings.SENDING_MAIL_HOST not in shown.values()
    infra_page = client_for(owner, demo).get("/infrastructure/").content.decode()
    for host in shown.values():
        assert f"<code>{host}</code>" in infra_page

    # The domain (API and page) expects exactly that name for each IP, and it checked out ok.
    records = api.get(f"/api/v1/domains/{domain.pk}").json()["records"]
    ptrs = {r["name"]: (r["value"], r["status"]) for r in records if r["purpose"] == "ptr"}
    expected = {reverse_name(ip): (host, "ok") for ip, host in shown.items()}
    assert ptrs == expected
    page = client_for(owner, demo).get(f"/domains/{domain.pk}/").content.decode()
    assert _ptr_rows(page) == expected
    assert 'data-record-status="wrong"' not in page and 'data-record-status="missing"' not in page

    # And the sandbox DNS answers so: PTR to the host, the host's A back to the IP.
    server = start_sandbox_dns("127.0.0.1", sandbox_settings, ZoneStore(settings.SANDBOX_DNS_ZONES))
    try:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], sandbox_settings
        for ip, host in shown.items():
            ptr = resolver.resolve(reverse_name(ip), "PTR")
            assert [r.target.to_text(omit_final_dot=True) for r in ptr] == [host]
            assert ip in {r.address for r in resolver.resolve(host, "A")}
    finally:
        server.stop()


def test_the_demo_seeding_completes_a_zone_made_before_reverse_dns_was_published(
    cast: Cast, sandbox_settings: int
) -> None:
    """A zone file from an older `make run`: the PTRs named the platform's mail host and the
    servers' host names had no A. The next seeding republishes every IP's PTR and A."""
    call_command("tenants", "demo", stdout=io.StringIO())
    demo = Tenant.objects.get(slug="demo")
    hosts = set(IpAddress.objects.filter(tenant=demo).values_list("ptr_hostname", flat=True))
    zones = ZoneStore(settings.SANDBOX_DNS_ZONES)
    zones.update(
        lambda records: [
            ZoneRecord.make(r.name, "PTR", settings.SENDING_MAIL_HOST) if r.type == "PTR" else r
            for r in records
            if r.name not in hosts
        ]
    )
    call_command("tenants", "demo", stdout=io.StringIO())
    server = start_sandbox_dns("127.0.0.1", sandbox_settings, zones)
    try:
        with schema_context(demo.schema_name):
            domain = SendingDomain.objects.get(name="demo-agency.test")
            result = run_check(domain.pk, tenant=demo)
    finally:
        server.stop()
    assert result is not None
    ptrs = [c for c in result.checks if c.record.purpose == RecordPurpose.PTR]
    assert ptrs and all(c.ok for c in ptrs), [c.message for c in ptrs]
    assert {c.record.value for c in ptrs} == hosts
