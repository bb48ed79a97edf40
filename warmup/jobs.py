"""Job handlers of warm-up's sending side (docs/warmup.md): thin, one service call each. The
queue registry discovers this module (`warmup.jobs`); the receiving side's handlers live in
warmup/receiving_jobs.py, imported from WarmupConfig.ready()."""

from __future__ import annotations

import datetime as dt
import logging

from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant
from warmup import conf
from warmup.services import plans, sender

log = logging.getLogger(__name__)


@job_handler(plans.PLAN_DAY_TASK, max_attempts=3, priority=conf.PRIORITY, timeout=600)
def plan_day(payload: Payload, context: JobContext) -> None:
    # Public: pairs the pool's index, enqueues one plan job per tenant (idempotent per day).
    day = dt.date.fromisoformat(payload["day"]) if payload.get("day") else None
    log.info("warm-up plan: %s members paired", plans.plan_day(day))


@job_handler(
    plans.PLAN_TENANT_TASK, max_attempts=3, priority=conf.PRIORITY, timeout=600, tenant_scoped=True
)
def plan_tenant(payload: Payload, context: JobContext) -> None:
    # A re-run writes nothing twice: mailboxes with messages that day are skipped.
    plans.write_day(dt.date.fromisoformat(payload["day"]), payload["entries"])


@job_handler(sender.SEND_DUE_TASK, max_attempts=1, priority=30, timeout=60)
def send_due(payload: Payload, context: JobContext) -> None:
    # Public: one deduplicated send job per tenant of the pool.
    sender.enqueue_due()


@job_handler(
    sender.SEND_TASK, max_attempts=1, priority=conf.PRIORITY, timeout=600, tenant_scoped=True
)
def send(payload: Payload, context: JobContext) -> None:
    report = sender.send_due(Tenant.objects.get(pk=context.tenant_id))
    log.info("warm-up send job %s: %s", context.job_id, report)
