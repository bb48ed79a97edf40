"""Job handlers of the send path (docs/sending.md): the scheduler tick, per-tenant scheduling and
batched sends. Thin: one service call each, ids only in the payload."""

from __future__ import annotations

import logging

from campaigns.sending import pipeline, scheduler
from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant

log = logging.getLogger(__name__)


@job_handler(scheduler.TICK_TASK, max_attempts=1, priority=20, timeout=60)
def tick(payload: Payload, context: JobContext) -> None:
    # Public: reads the index of running campaigns, enqueues one schedule job per tenant.
    scheduler.tick()


@job_handler(scheduler.SCHEDULE_TASK, max_attempts=3, priority=30, timeout=300, tenant_scoped=True)
def schedule(payload: Payload, context: JobContext) -> None:
    # Idempotent: the unique (campaign, lead, step) makes a repeated run create nothing twice.
    scheduler.schedule_tenant(Tenant.objects.get(pk=context.tenant_id))


@job_handler(
    scheduler.SEND_TASK,
    max_attempts=3,
    priority=scheduler.SEND_PRIORITY,
    timeout=600,
    tenant_scoped=True,
)
def send(payload: Payload, context: JobContext) -> None:
    # A re-run never sends a message twice: rows it finds in `sending` go back to the queue only
    # if their DATA never started, else become unknown (docs/sending.md, "A worker killed").
    report = pipeline.send_batch(
        Tenant.objects.get(pk=context.tenant_id),
        campaign_id=int(payload["campaign_id"]),
        message_ids=[int(m) for m in payload["message_ids"]],
        job_id=context.job_id,
    )
    log.info("send job %s: %s", context.job_id, dict(report.counts))
