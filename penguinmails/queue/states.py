"""The job moves, through the one state-machine helper (`penguinmails.states`).

The routine moves of a run (publish, claim, complete) are checked but not logged (JOB_STATES'
`quiet`); failures, requeues, cancels and revivals are logged.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import QuerySet

from penguinmails import states
from penguinmails.errors import IllegalTransition
from penguinmails.models import JOB_STATES, Job


def check_move(from_: Collection[str], to: str) -> None:
    states.check_move(JOB_STATES, from_, to)


def transition(
    jobs: QuerySet[Job], *, to: str, from_: Collection[str], reason: str = "", **fields: Any
) -> int:
    """Move the jobs in `jobs` that are in one of `from_` to `to`; returns how many moved.

    The status condition is part of the UPDATE, so concurrent movers (two workers, a worker and
    the reaper) cannot both win: the loser sees 0 rows.
    """
    moved: int = states.transition(jobs, to, from_=from_, reason=reason, **fields)
    return moved


def transition_job(job: Job, to: str, *, reason: str = "", **fields: Any) -> None:
    """Move one loaded job from the status it was read in; refuses if it changed meanwhile."""
    check_move([job.status], to)
    moved = transition(
        Job.objects.filter(pk=job.pk), to=to, from_=[job.status], reason=reason, **fields
    )
    if moved == 0:
        raise IllegalTransition(f"job {job.pk} changed status meanwhile; reload and retry")
    job.status = to
    for name, value in fields.items():
        setattr(job, name, value)
