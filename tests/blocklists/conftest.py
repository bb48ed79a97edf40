"""A real sandbox DNS server on a free loopback port serving the blocklist zones, and IPs of the
cast's tenants to check."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infrastructure.models import IpAddress, IpRole, IpStatus, VpsInstance
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneStore, start_sandbox_dns
from reputation.models import Blocklist
from tenants.models import Tenant


@pytest.fixture
def dnsbl(tmp_path: Path, settings: Any) -> Iterator[SandboxDnsServer]:
    zones = tmp_path / "sandbox-dns.json"
    server = start_sandbox_dns("127.0.0.1", 0, ZoneStore(zones))
    settings.SANDBOX_DNS_ZONES = zones
    settings.DNSBL_RESOLVER = server.nameserver
    settings.DNSBL_TIMEOUT = 1
    settings.BLOCKLIST_STAFF_EMAILS = ["noc@penguinmails.test"]
    # A transactional test's flush empties public tables, the seeded lists with them.
    seed = importlib.import_module("reputation.migrations.0002_seed_blocklists")
    for name, zone, kind, weight, url in seed.LISTS:
        Blocklist.objects.get_or_create(
            zone=zone, defaults={"name": name, "kind": kind, "weight": weight, "removal_url": url}
        )
    yield server
    server.stop()


def make_ip(
    tenant: Tenant,
    address: str,
    *,
    status: str = IpStatus.ACTIVE,
    role: str = IpRole.SENDING,
) -> IpAddress:
    vps, _ = VpsInstance.objects.get_or_create(
        name=f"pm-{tenant.slug}-1",
        defaults={"tenant": tenant, "provider": "local", "hostname": f"mail1.{tenant.slug}.test",
                  "size": "small"},
    )  # fmt: skip
    return IpAddress.objects.create(
        vps=vps, tenant=tenant, address=address, status=status, role=role
    )
