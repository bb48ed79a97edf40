"""Issue 10, item 19: under `make run` the sandbox zone is complete. The demo seeding publishes
the platform's own names (the mail host's addresses, the SPF include, the tracking target), so
the demo domain's SPF, PTR and tracking host verify through the ordinary verification service
against the sandbox DNS server, and tracking links use the domain's own tracking host."""

from __future__ import annotations

import io
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
from deliverability.dns.records import RecordPurpose
from deliverability.models import RecordStatus, SendingDomain
from deliverability.services.domains import run_check
from infrastructure.models import IpAddress
from penguinmails.sandbox.dns import ZoneStore, start_sandbox_dns
from tenants.models import Tenant
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


@pytest.fixture
def sandbox_settings(settings: SettingsWrapper, tmp_path: Path) -> int:
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA IF EXISTS "t_demo" CASCADE')
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
