"""Retention (seed: removeOnComplete / removeOnFail): completed jobs are pruned after
settings.JOB_RETENTION_COMPLETED_DAYS; dead jobs are kept until someone handles them."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from penguinmails.models import Job, JobStatus

PRUNE_BATCH = 5000


def prune_completed(*, before: dt.datetime | None = None) -> int:
    """Delete completed jobs finished before `before` (default: now - retention), in batches so
    a large backlog never holds one long lock. Cancelled jobs go with them."""
    cutoff = before or timezone.now() - timedelta(days=settings.JOB_RETENTION_COMPLETED_DAYS)
    deleted = 0
    while True:
        ids = list(
            Job.objects.filter(
                status__in=[JobStatus.COMPLETED, JobStatus.CANCELLED], finished_at__lt=cutoff
            ).values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not ids:
            return deleted
        deleted += Job.objects.filter(pk__in=ids).delete()[0]
