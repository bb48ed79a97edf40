"""The platform's own job handlers. Like every app's `jobs` module, found by autodiscovery
(penguinmails.queue.registry.autodiscover)."""

from __future__ import annotations

import logging

from penguinmails.queue.registry import JobContext, Payload, job_handler
from penguinmails.queue.retention import prune_completed

log = logging.getLogger(__name__)


@job_handler("platform.prune_jobs", priority=200, max_attempts=1, timeout=600)
def prune_jobs(payload: Payload, context: JobContext) -> None:
    """Daily retention, enqueued by beat (penguinmails.schedule)."""
    deleted = prune_completed()
    log.info("pruned %s completed jobs", deleted)


@job_handler("platform.noop", priority=100, max_attempts=1, timeout=60)
def noop(payload: Payload, context: JobContext) -> None:
    """Does nothing: enqueue it to check the whole path end to end (and bench/queue.py)."""
