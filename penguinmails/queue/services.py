"""Operator actions on jobs, shared by `manage.py jobs` and the Django admin."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from penguinmails.errors import Conflict, IllegalTransition, NotFound
from penguinmails.models import JOB_TRANSITIONS, LIVE_STATUSES, Job, JobStatus
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
    try:
        # A savepoint: a live job holding the same idempotency key refuses the revival.
        with transaction.atomic():
            transition_job(
                job,
                JobStatus.QUEUED,
                attempts=0,
                run_at=timezone.now(),
                finished_at=None,
                worker_id="",
            )
    except IntegrityError:
        holder = _live_holder(job)
        raise Conflict(
            f"job {job.pk} cannot run again: live job {holder} holds its idempotency key "
            f"{job.idempotency_key!r}"
        ) from None
    return job


def _live_holder(job: Job) -> int | None:
    return (
        Job.objects.filter(idempotency_key=job.idempotency_key, status__in=LIVE_STATUSES)
        .exclude(pk=job.pk)
        .values_list("pk", flat=True)
        .first()
    )


def retry_dead_jobs() -> int:
    """Queue every dead job again. Of dead jobs sharing an idempotency key, only the newest is
    revived, and none while a live job holds the key (the key is unique among live jobs)."""
    now = timezone.now()
    revived = transition(
        Job.objects.filter(idempotency_key__isnull=True),
        to=JobStatus.QUEUED,
        from_=[JobStatus.DEAD],
        attempts=0,
        run_at=now,
        finished_at=None,
        worker_id="",
    )
    keyed = (
        Job.objects.filter(status=JobStatus.DEAD, idempotency_key__isnull=False)
        .order_by("idempotency_key", "-id")
        .distinct("idempotency_key")
        .values_list("pk", flat=True)
    )
    for job_id in list(keyed):
        try:
            with transaction.atomic():
                revived += transition(
                    Job.objects.filter(pk=job_id),
                    to=JobStatus.QUEUED,
                    from_=[JobStatus.DEAD],
                    attempts=0,
                    run_at=now,
                    finished_at=None,
                    worker_id="",
                )
        except IntegrityError:
            continue  # a live job already does this work
    return revived


@transaction.atomic
def cancel_job(job: Job) -> Job:
    """Stop a job that has not started; a running job cannot be cancelled (it would finish)."""
    if JobStatus.CANCELLED not in JOB_TRANSITIONS[job.status]:
        raise IllegalTransition(f"job {job.pk} is {job.status} and cannot be cancelled")
    transition_job(job, JobStatus.CANCELLED, finished_at=timezone.now(), lease_expires_at=None)
    return job


def purge_completed(*, before: dt.datetime) -> int:
    return prune_completed(before=before)
