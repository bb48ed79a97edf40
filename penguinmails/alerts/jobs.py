"""The alert engine's jobs (found by the queue's autodiscovery)."""

from __future__ import annotations

import logging

from penguinmails import netguard
from penguinmails.alerts import channels
from penguinmails.alerts.services import evaluate_rules
from penguinmails.queue.registry import JobContext, Payload, job_handler

log = logging.getLogger(__name__)


@job_handler("alerts.evaluate", priority=50, max_attempts=1, timeout=50)
def evaluate(payload: Payload, context: JobContext) -> None:
    """Every minute from beat (penguinmails.schedule): run every registered rule."""
    counts = evaluate_rules()
    log.info("alert rules evaluated: %s", counts)


@job_handler(channels.WEBHOOK_JOB, transient=(channels.WebhookFailed,), max_attempts=5, timeout=30)
def webhook(payload: Payload, context: JobContext) -> None:
    """Tell the Slack-compatible webhook that an alert opened (retried on 5xx or no answer)."""
    try:
        channels.post_webhook(str(payload["text"]))
    except netguard.Refused as exc:
        # A setting pointing at a private address: final, and said so in the job's error.
        raise RuntimeError(f"ALERTS_WEBHOOK_URL refused: {exc}") from None
