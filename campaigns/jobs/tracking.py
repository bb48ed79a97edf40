"""Job handlers of tracking (docs/tracking.md): moving buffered events from Redis into the
tenants' schemas."""

from __future__ import annotations

from campaigns.tracking import flush
from penguinmails.queue.registry import JobContext, Payload, job_handler


# A platform job (it crosses tenants, one transaction per batch). Never retried: beat enqueues
# the next one within 2 s, and a failed batch waits in Redis for it.
@job_handler("tracking.flush", max_attempts=1, priority=20, timeout=90)
def flush_events(payload: Payload, context: JobContext) -> None:
    flush.run()
