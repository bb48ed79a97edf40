"""Job handlers of automatic protection's safety net (docs/inbound.md): thin, one service each."""

from __future__ import annotations

from campaigns.services import protection
from penguinmails.queue.registry import JobContext, Payload, job_handler


@job_handler(protection.CHECK_DUE_TASK, max_attempts=1, priority=40, timeout=120)
def check_due(payload: Payload, context: JobContext) -> None:
    # Public: the platform alert and one check job per tenant with a running campaign.
    protection.enqueue_checks()


@job_handler(protection.CHECK_TASK, max_attempts=3, priority=60, timeout=600, tenant_scoped=True)
def check(payload: Payload, context: JobContext) -> None:
    # Idempotent: a flag or pause is recorded once per level until a person resumes.
    protection.evaluate_tenant()
