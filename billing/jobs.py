"""Job handlers of billing: thin, ids only in the payload (docs/billing.md)."""

from __future__ import annotations

import logging

from billing.services import dunning, margins, stripe_events
from billing.services.stripe_client import TRANSIENT, configured
from penguinmails.queue.registry import JobContext, Payload, job_handler

log = logging.getLogger(__name__)


@job_handler(stripe_events.PROCESS_TASK, transient=TRANSIENT, max_attempts=5, priority=60)
def process_stripe_event(payload: Payload, context: JobContext) -> None:
    stripe_events.process(int(payload["event_id"]), job_id=context.job_id)


@job_handler(stripe_events.RECONCILE_TASK, transient=TRANSIENT, max_attempts=3, timeout=1800)
def reconcile(payload: Payload, context: JobContext) -> None:
    if not configured():
        return
    fixes = stripe_events.reconcile()
    log.info("billing reconcile: %d fix(es)", len(fixes))


@job_handler(dunning.ADVANCE_TASK, max_attempts=3, timeout=1800)
def dunning_advance(payload: Payload, context: JobContext) -> None:
    moved = dunning.advance()
    log.info("billing dunning: %d tenant(s) on the ladder", len(moved))


@job_handler(margins.MARGINS_TASK, max_attempts=3, timeout=900)
def margins_check(payload: Payload, context: JobContext) -> None:
    found = margins.alert_margins()
    log.info("billing margins: %d tenant(s) of concern", len(found))
