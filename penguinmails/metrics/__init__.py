"""Prometheus metrics (docs/operations.md, "Metrics and health").

    from penguinmails import metrics
    metrics.count_tracking_event("open")

`/metrics` (penguinmails.metrics.middleware) serves them in the Prometheus text format, behind
the METRICS_TOKEN bearer token. `read(name, **labels)` gives the same figures to Python (the
alert rules, tests): summed over every process, as a scrape would see them.
"""

from __future__ import annotations

from penguinmails.metrics.instruments import (
    HTTP_ERRORS,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    JOB_DURATION,
    JOB_FAILURES,
    JOBS,
    TRACKING_EVENTS,
)
from penguinmails.metrics.read import read, snapshot

# Outcomes of a job run that count as failures (penguinmails.queue.runner.Outcome values, and
# "error" when recording the outcome itself failed).
FAILED_OUTCOMES = frozenset({"retrying", "dead", "error"})


def record_request(view: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(view, method, f"{status // 100}xx").inc()
    HTTP_LATENCY.labels(view).observe(seconds)
    if status >= 500:
        HTTP_ERRORS.labels(view).inc()


def record_job(task: str, outcome: str, seconds: float) -> None:
    JOBS.labels(task, outcome).inc()
    JOB_DURATION.labels(task).observe(seconds)
    if outcome in FAILED_OUTCOMES:
        JOB_FAILURES.labels(task).inc()


def count_tracking_event(kind: str) -> None:
    """One open, click or unsubscribe taken by the tracking endpoints."""
    TRACKING_EVENTS.labels(kind).inc()


__all__ = ["count_tracking_event", "read", "record_job", "record_request", "snapshot"]
