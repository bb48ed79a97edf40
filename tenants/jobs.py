"""Tenant jobs: topping up the pool of spare schemas (tenants/services/schema_pool.py)."""

from __future__ import annotations

import logging

from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.services.schema_pool import FILL_TASK, fill_spares

log = logging.getLogger(__name__)


@job_handler(FILL_TASK, max_attempts=2, priority=150, timeout=600)
def fill(payload: Payload, context: JobContext) -> None:
    made, dropped = fill_spares()
    log.info("spare tenant schemas: %d cloned, %d stale dropped", made, dropped)
