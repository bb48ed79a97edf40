"""Operator actions on jobs, shared by `manage.py jobs` and the Django admin."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from penguinmails.errors import IllegalTransition, NotFound
from penguinmails.models import JOB_TRANSITIONS, Job, JobStatus
from penguinmails.queue.retention import prune_completed
from penguinmails.queue.states import transition, transition_job


def get_job(job_id: int) -> Job:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


@transaction.atomic
def retry_job(job: Job) -> Job:
    """Give a dead or cancelled job a fresh set of attempts, now."""
    if JobStatus.QUEUED not in JOB_TRANSITIONS[job.status]:
        raise IllegalTransition(f"job {job.pk} is {job.status}; only dead or cancelled jobs retry")
    transition_job(
        job, JobStatus.QUEUED, attempts=0, run_at=timezone.now(), finished_at=None, worker_id=""
    )
    return job


def retry_dead_jobs() -> int:
    return transition(
        Job.objects.all(),
        to=JobStatus.QUEUED,
        from_=[JobStatus.DEAD],
        attempts=0,
        run_at=timezone.now(),
        finished_at=None,
        worker_id="",
    )


@transaction.atomic
def cancel_job(job: Job) -> Job:
    """Stop a job that has not started; a running job cannot be cancelled (it would finish)."""
    if JobStatus.CANCELLED not in JOB_TRANSITIONS[job.status]:
        raise IllegalTransition(f"job {job.pk} is {job.status} and cannot be cancelled")
    transition_job(job, JobStatus.CANCELLED, finished_at=timezone.now(), lease_expires_at=None)
    return job


def purge_completed(*, before: dt.datetime) -> int:
    return prune_completed(before=before)
