"""Fixtures: a real sandbox DNS server, a resolver pointed at it, and the HTTP fakes."""

from __future__ import annotations

from collections.abc import Iterator

import dns.resolver
import pytest

from deliverability.dns.records import DkimKeyPair, DomainDnsSpec, generate_dkim_keypair
from deliverability.dns.verify import make_resolver
from infrastructure.mailu import MailuClient
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneStore, start_sandbox_dns
from tests.fakes.cloudflare import FakeCloudflare
from tests.fakes.mailu import FakeMailu

IPS = ["203.0.113.10", "203.0.113.11"]


@pytest.fixture(scope="session")
def dkim_key() -> DkimKeyPair:
    return generate_dkim_keypair()


@pytest.fixture
def spec(dkim_key: DkimKeyPair) -> DomainDnsSpec:
    return DomainDnsSpec(
        domain="acme-mail.test",
        mail_host="mx1.pm.test",
        sending_ips=IPS,
        dkim_selector="pm1",
        dkim_public_key=dkim_key.public_key_b64,
        dmarc_rua="dmarc@reports.pm.test",
        tracking_host="track.acme-mail.test",
        tracking_target="t.pm.test",
    )


@pytest.fixture
def sandbox_dns() -> Iterator[SandboxDnsServer]:
    server = start_sandbox_dns("127.0.0.1", 0, ZoneStore())
    yield server
    server.stop()


@pytest.fixture
def resolver(sandbox_dns: SandboxDnsServer) -> dns.resolver.Resolver:
    return make_resolver([sandbox_dns.nameserver], timeout=2.0)


@pytest.fixture
def fake_mailu() -> Iterator[FakeMailu]:
    fake = FakeMailu().start()
    yield fake
    fake.stop()


@pytest.fixture
def mailu(fake_mailu: FakeMailu) -> Iterator[MailuClient]:
    client = MailuClient(fake_mailu.url, fake_mailu.token, timeout=2.0, backoff=0.01)
    yield client
    client.close()


@pytest.fixture
def fake_cloudflare() -> Iterator[FakeCloudflare]:
    fake = FakeCloudflare().start()
    yield fake
    fake.stop()
