"""Fixtures for VPS provisioning: the local provider on a per-test state file, the Hostwinds and
Mailu fakes wired in through settings, a plan switch, and a helper that runs ready jobs through
the queue runner (as workers run them: claimed, in the tenant's schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from billing.entitlements import default_plan
from billing.models import Plan, TenantPlan
from infrastructure.providers import LocalProvider
from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from tenants.models import Tenant
from tests.fakes.hostwinds import FakeHostwinds
from tests.fakes.mailu import FakeMailu

READY = [JobStatus.QUEUED, JobStatus.ENQUEUED, JobStatus.RETRYING]
HW_KEY = "hw-test-key-123"


@pytest.fixture
def local_vps(tmp_path: Path, settings: Any) -> LocalProvider:
    """The local provider (the default path), its records in a file of this test; the sandbox
    DNS zone it publishes reverse DNS to (DNS_PROVIDER local, as under `make run`) too."""
    settings.VPS_PROVIDER = "local"
    settings.LOCAL_VPS_STATE_FILE = tmp_path / "vps.json"
    settings.DNS_PROVIDER = "local"
    settings.SANDBOX_DNS_ZONES = tmp_path / "zones.json"
    settings.INFRA_POLL_SECONDS = 0
    return LocalProvider(settings.LOCAL_VPS_STATE_FILE)


@pytest.fixture
def mailu(settings: Any) -> Iterator[FakeMailu]:
    fake = FakeMailu().start()
    # Every Mailu server's API is this fake (the real one is https://<host>/api/v1).
    settings.MAILU_API_URL_TEMPLATE = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def hostwinds(settings: Any, mailu: FakeMailu) -> Iterator[FakeHostwinds]:
    with FakeHostwinds(api_key=HW_KEY, allowed_ips={"127.0.0.1"}, polls_until_active=1) as fake:
        settings.VPS_PROVIDER = "hostwinds"
        settings.HOSTWIND_API_KEY = HW_KEY
        settings.HOSTWINDS_API_URL = fake.url
        settings.HOSTWINDS_TIMEOUT_SECONDS = 2
        settings.HOSTWINDS_LOCATION_ID = "2"
        settings.HOSTWINDS_IMAGE_ID = "tmpl-ubuntu-2404"
        settings.HOSTWINDS_PLAN_IDS = {"small": "rid-small", "medium": "rid-small"}
        settings.INFRA_POLL_SECONDS = 0
        yield fake


def set_plan(tenant: Tenant, slug: str) -> Plan:
    default_plan()  # a transactional test's flush empties plans: this seeds the ladder back
    plan = Plan.objects.get(slug=slug)
    TenantPlan.objects.update_or_create(tenant=tenant, defaults={"plan": plan})
    return plan


def plan_with_servers(servers: int = 1) -> str:
    """The slug of the cheapest public plan with at least `servers` servers."""
    for plan in Plan.objects.filter(is_public=True).order_by("monthly_price"):
        if plan.parsed_limits.vps_count >= servers:
            return plan.slug
    raise AssertionError("no plan with servers")


def run_jobs(*, limit: int = 50, due_now: bool = True) -> list[Job]:
    """Run every ready job (and those they enqueue) through the queue runner; returns them.

    With `due_now`, jobs scheduled later (polls, retries' backoff) are run now, as time passing
    would: tests do not sleep through backoff.
    """
    ran: list[Job] = []
    for _ in range(limit):
        jobs = Job.objects.filter(status__in=READY)
        if not due_now:
            jobs = jobs.filter(run_at__lte=timezone.now())
        job = jobs.order_by("run_at", "priority", "id").first()
        if job is None:
            break
        if job.run_at > timezone.now():
            Job.objects.filter(pk=job.pk).update(run_at=timezone.now())
        runner.run(job.pk, worker_id="test-worker")
        job.refresh_from_db()
        ran.append(job)
    return ran
