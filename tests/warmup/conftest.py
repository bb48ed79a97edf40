"""Warm-up fixtures: mailboxes in acme and in globex (the outsider's tenant) pointing at the real
sandbox SMTP server (tests/sending's fixture), opted into the pool, and helpers that run the
day's plan the way the beat job does (pairing from the public index, then each tenant's job)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import Mailbox
from penguinmails.models import CLAIMABLE_STATUSES, Job, WarmupPoolMember
from penguinmails.queue import runner
from tenants.models import Tenant
from tests.sending.conftest import Sandbox, make_mailbox, sandbox  # noqa: F401 - the fixture
from warmup.models import WarmupPlan
from warmup.services import plans, pool


def pool_mailbox(
    tenant: Tenant,
    sandbox: Sandbox,  # noqa: F811
    address: str,
    *,
    limit: int = 100,
    **plan: Any,  # noqa: F811
) -> tuple[Mailbox, WarmupPlan]:
    """A mailbox of `tenant` on the sandbox SMTP server, in the pool with `plan`'s settings."""
    with schema_context(tenant.schema_name):
        mailbox = make_mailbox(
            sandbox, 1, address=address, display_name=address.split("@")[0].title(),
            daily_limit=limit,
        )  # fmt: skip
        return mailbox, pool.opt_in(mailbox, **plan)


def run_jobs(task: str) -> int:
    """Run every live job named `task` with the worker's runner; returns how many ran."""
    connection.set_schema_to_public()
    ran = 0
    for job in Job.objects.filter(task=task, status__in=CLAIMABLE_STATUSES).order_by("id"):
        runner.run(job.pk, worker_id="test")
        ran += 1
    connection.set_schema_to_public()
    return ran


def plan(day: date | None = None, seed: int = 1) -> int:
    """The beat job's pairing, then each tenant's plan job, as the workers run them."""
    connection.set_schema_to_public()
    plans.plan_day(day or timezone.now().date(), seed=seed)
    return run_jobs(plans.PLAN_TENANT_TASK)


def member_of(tenant: Tenant, mailbox: Mailbox) -> WarmupPoolMember:
    return WarmupPoolMember.objects.get(tenant=tenant, mailbox_id=mailbox.pk)
