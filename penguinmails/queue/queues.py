"""The Celery queues jobs are published to, drained in strict priority order by workers."""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    HIGH = "high"
    DEFAULT = "default"
    LOW = "low"


# The order workers consume in (`-Q high,default,low` with queue_order_strategy=priority).
CONSUME_ORDER = (Queue.HIGH, Queue.DEFAULT, Queue.LOW)

# Priorities below this are published at once after commit instead of waiting for the migrator.
URGENT_BELOW = 50


def queue_for(priority: int) -> Queue:
    """Seed: priority <= 50 high, <= 150 default, else low (lower is more urgent)."""
    if priority <= 50:
        return Queue.HIGH
    if priority <= 150:
        return Queue.DEFAULT
    return Queue.LOW
