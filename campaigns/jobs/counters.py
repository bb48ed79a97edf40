"""Job handlers of the status counters' compaction (docs/analytics.md, "Status counters")."""

from __future__ import annotations

from campaigns.services.stats import counters
from penguinmails.queue.registry import JobContext, Payload, job_handler


@job_handler(counters.COMPACT_DUE_TASK, max_attempts=1, priority=40, timeout=60)
def compact_due(payload: Payload, context: JobContext) -> None:
    # Public: one compaction job per tenant with a running campaign (the public index).
    counters.enqueue_compactions()


@job_handler(counters.COMPACT_TASK, max_attempts=3, priority=60, timeout=300, tenant_scoped=True)
def compact(payload: Payload, context: JobContext) -> None:
    # Idempotent: folding folded rows changes nothing; totals hold under concurrent writers.
    counters.compact()
