"""The migrator: moves ready jobs from PostgreSQL to Celery, most urgent first.

Run by beat about every second (penguinmails.schedule). Several may run at once: each batch is
taken with FOR UPDATE SKIP LOCKED and marked enqueued in the same transaction, so a row is
published by exactly one of them.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from penguinmails.models import READY_STATUSES, Job, JobStatus
from penguinmails.queue import live
from penguinmails.queue.publisher import Publishable, publish
from penguinmails.queue.states import transition

log = logging.getLogger(__name__)


def migrate_ready(*, time_budget: float = 0.9) -> int:
    """Publish ready jobs in batches until none is ready, the broker holds enough, or the time
    budget (a little under the beat interval) is spent. Returns how many were published."""
    deadline = time.monotonic() + time_budget
    published = 0
    while time.monotonic() < deadline:
        # Keep the broker's backlog bounded: ordering across the whole backlog stays in
        # PostgreSQL, and enqueued leases need only cover what Redis holds.
        # (Counted in jobs: a message holds up to JOB_MESSAGE_BATCH of them.)
        per_message = settings.JOB_MESSAGE_BATCH
        room = settings.JOB_BROKER_MAX_BACKLOG - sum(live.broker_depth().values()) * per_message
        limit = min(settings.JOB_MIGRATE_BATCH, room)
        if limit <= 0:
            break
        batch = take_batch(limit)
        if not batch:
            break
        try:
            publish(batch, per_message=per_message)
        except Exception:
            # Put them back at once instead of waiting for their lease to run out.
            transition(
                Job.objects.filter(pk__in=[j.id for j in batch]),
                to=JobStatus.QUEUED,
                from_=[JobStatus.ENQUEUED],
                lease_expires_at=None,
            )
            raise
        published += len(batch)
        if len(batch) < limit:
            break
    return published


def take_batch(limit: int) -> list[Publishable]:
    """Claim up to `limit` ready rows for publishing (committed before anything is published,
    so a worker that gets the message at once finds the row enqueued)."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(status__in=READY_STATUSES, run_at__lte=now)
            .order_by("priority", "created_at")
            .values_list("id", "priority", "task")[:limit]
        )
        if not rows:
            return []
        transition(
            Job.objects.filter(pk__in=[r[0] for r in rows]),
            to=JobStatus.ENQUEUED,
            from_=READY_STATUSES,
            lease_expires_at=now + timedelta(seconds=settings.JOB_ENQUEUED_LEASE_SECONDS),
        )
    return [Publishable(id=r[0], priority=r[1], task=r[2]) for r in rows]
