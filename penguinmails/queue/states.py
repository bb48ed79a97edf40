"""The job state machine's one transition function; every status change goes through it."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from penguinmails.errors import IllegalTransition
from penguinmails.models import JOB_TRANSITIONS, Job


def check_move(from_: Collection[str], to: str) -> None:
    for source in from_:
        if to not in JOB_TRANSITIONS[source]:
            raise IllegalTransition(f"a job cannot go from {source} to {to}")


def transition(jobs: QuerySet[Job], *, to: str, from_: Collection[str], **fields: Any) -> int:
    """Move the jobs in `jobs` that are in one of `from_` to `to`; returns how many moved.

    The status condition is part of the UPDATE, so concurrent movers (two workers, a worker and
    the reaper) cannot both win: the loser sees 0 rows.
    """
    check_move(from_, to)
    fields.setdefault("updated_at", timezone.now())
    return jobs.filter(status__in=list(from_)).update(status=to, **fields)


def transition_job(job: Job, to: str, **fields: Any) -> None:
    """Move one loaded job from the status it was read in; refuses if it changed meanwhile."""
    check_move([job.status], to)
    moved = transition(Job.objects.filter(pk=job.pk), to=to, from_=[job.status], **fields)
    if moved == 0:
        raise IllegalTransition(f"job {job.pk} changed status meanwhile; reload and retry")
    job.status = to
    for name, value in fields.items():
        setattr(job, name, value)
