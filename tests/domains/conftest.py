"""Fixtures for sending domains: a real sandbox DNS server on a free loopback port that the local
DNS provider publishes to and verification asks, and a helper that runs ready jobs through the
queue runner (so handlers run as workers run them: claimed, in the tenant's schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import SendingDomain
from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneStore, start_sandbox_dns
from tenants.models import Membership, Tenant, User
from tenants.services.access import Principal, principal_for_membership

READY = [JobStatus.QUEUED, JobStatus.ENQUEUED, JobStatus.RETRYING]


@pytest.fixture
def dns_server(tmp_path: Path, settings: Any) -> Iterator[SandboxDnsServer]:
    zones = tmp_path / "sandbox-dns.json"
    server = start_sandbox_dns("127.0.0.1", 0, ZoneStore(zones))
    settings.DNS_PROVIDER = "local"
    settings.SANDBOX_DNS_ZONES = zones
    settings.DNS_RESOLVERS = [server.nameserver]
    settings.DNS_TIMEOUT = 2
    yield server
    server.stop()


def run_jobs(*, limit: int = 20) -> list[Job]:
    """Run every ready job (and those they enqueue) through the queue runner; returns them."""
    ran: list[Job] = []
    for _ in range(limit):
        job = (
            Job.objects.filter(status__in=READY, run_at__lte=timezone.now())
            .order_by("priority", "id")
            .first()
        )
        if job is None:
            break
        runner.run(job.pk, worker_id="test-worker")
        job.refresh_from_db()
        ran.append(job)
    return ran


def principal(tenant: Tenant, user: User) -> Principal:
    return principal_for_membership(Membership.objects.get(tenant=tenant, user=user))


def domain_in(tenant: Tenant, name: str) -> SendingDomain | None:
    with schema_context(tenant.schema_name):
        # Records prefetched while in the schema, so callers can read them anywhere.
        return SendingDomain.objects.prefetch_related("records").filter(name=name).first()
