"""The worker side: claim a job, run its handler in the right schema, record the outcome.

Called by the thin Celery task `penguinmails.run_job(job_id)`. Delivery is at least once (acks
late, redelivery when a worker dies, the reaper); the conditional claim makes a duplicate
delivery a no-op, so a handler runs once per claim.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tenants.utils import schema_context

from penguinmails.models import CLAIMABLE_STATUSES, Job, JobStatus
from penguinmails.queue import live
from penguinmails.queue.registry import Handler, JobContext, UnknownHandler, get_handler
from penguinmails.queue.states import transition
from tenants.models import Tenant

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    SKIPPED = "skipped"  # another delivery holds or finished the job
    COMPLETED = "completed"
    RETRYING = "retrying"
    DEAD = "dead"
    LOST = "lost"  # the lease was taken from us (reaped) before we could record the outcome


def backoff_seconds(attempt: int) -> float:
    """Seed: exponential from 2 s. Jitter adds up to a quarter, so delays still always grow."""
    base = settings.JOB_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return base + random.uniform(0, base / 4)


def run(job_id: int, *, worker_id: str) -> Outcome:
    close_old_connections()  # honours CONN_MAX_AGE and drops broken connections
    # Whatever a previous job did, this one starts in public.
    connection.set_schema_to_public()
    job = claim(job_id, worker_id=worker_id)
    if job is None:
        live.note_skipped_delivery(job_id)
        return Outcome.SKIPPED
    live.set_status(
        job.pk, status=JobStatus.RUNNING, worker=worker_id, started=_iso(job.started_at)
    )
    _leases.track(job.pk, worker_id)
    try:
        return _run_claimed(job, worker_id)
    finally:
        _leases.untrack(job.pk)
        connection.set_schema_to_public()


def claim(job_id: int, *, worker_id: str) -> Job | None:
    """The conditional UPDATE only one claimer wins; None when someone else has the job."""
    now = timezone.now()
    with transaction.atomic():
        _skip_fsync()
        won = transition(
            # A stale duplicate message must not start a job waiting out its retry backoff (or
            # scheduled later): only published jobs, or jobs already due, are claimable.
            Job.objects.filter(Q(status=JobStatus.ENQUEUED) | Q(run_at__lte=now), pk=job_id),
            to=JobStatus.RUNNING,
            from_=CLAIMABLE_STATUSES,
            attempts=F("attempts") + 1,
            worker_id=worker_id,
            started_at=now,
            lease_expires_at=now + timedelta(seconds=settings.JOB_RUNNING_LEASE_SECONDS),
        )
        return Job.objects.get(pk=job_id) if won else None


def _skip_fsync() -> None:
    """The worker's bookkeeping commits need not wait for the disk. PostgreSQL writes its log in
    order, so a crash only loses the newest commits: their jobs go back a step and run again
    (delivery is at least once anyway). Enqueues, in the producer's transaction, stay durable."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")


def _run_claimed(job: Job, worker_id: str) -> Outcome:
    try:
        handler = get_handler(job.task)
    except UnknownHandler as exc:
        return _finish_dead(job, worker_id, str(exc))
    schema = "public"
    if job.tenant_id is not None:
        tenant = Tenant.objects.filter(pk=job.tenant_id).first()
        if tenant is None:
            return _finish_dead(
                job, worker_id, f"tenant {job.tenant_id} no longer exists; refused to run"
            )
        schema = tenant.schema_name
    elif handler.tenant_scoped:
        return _finish_dead(job, worker_id, "tenant job without a tenant; refused to run in public")
    context = JobContext(
        job_id=job.pk,
        attempt=job.attempts,
        tenant_id=job.tenant_id,
        schema_name=schema,
        worker_id=worker_id,
        heartbeat=lambda: extend_lease([job.pk], worker_id),
    )
    try:
        with schema_context(schema):
            handler.func(job.payload, context)
    except SoftTimeLimitExceeded:
        return _finish_failed(job, worker_id, handler, f"timed out after {handler.timeout}s", True)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        error = f"{type(exc).__name__}: {exc}"
        return _finish_failed(job, worker_id, handler, error, isinstance(exc, handler.transient))
    return _finish(job, worker_id, JobStatus.COMPLETED, Outcome.COMPLETED)


def _finish_failed(
    job: Job, worker_id: str, handler: Handler, error: str, transient: bool
) -> Outcome:
    if transient and job.attempts < job.max_attempts:
        delay = backoff_seconds(job.attempts)
        log.info("job %s attempt %s failed, retry in %.1fs: %s", job.pk, job.attempts, delay, error)
        # Never a Celery countdown: the retry waits in PostgreSQL, where the migrator finds it.
        return _finish(
            job,
            worker_id,
            JobStatus.RETRYING,
            Outcome.RETRYING,
            run_at=timezone.now() + timedelta(seconds=delay),
            last_error=error[:5000],
        )
    log.warning("job %s (%s) dead after %s attempts: %s", job.pk, job.task, job.attempts, error)
    return _finish_dead(job, worker_id, error)


def _finish_dead(job: Job, worker_id: str, error: str) -> Outcome:
    return _finish(job, worker_id, JobStatus.DEAD, Outcome.DEAD, last_error=error[:5000])


def _finish(job: Job, worker_id: str, to: str, outcome: Outcome, **fields: object) -> Outcome:
    # A broken connection (say the handler's query was killed) must not lose the outcome.
    close_old_connections()
    connection.set_schema_to_public()
    now = timezone.now()
    if to != JobStatus.RETRYING:
        fields["finished_at"] = now
    with transaction.atomic():
        _skip_fsync()
        moved = transition(
            Job.objects.filter(pk=job.pk, worker_id=worker_id),
            to=to,
            from_=[JobStatus.RUNNING],
            lease_expires_at=None,
            **fields,
        )
    if not moved:
        log.warning("job %s: lease lost before recording %s; it will run again", job.pk, to)
        return Outcome.LOST
    live.set_status(job.pk, status=to, worker=worker_id, finished=_iso(now))
    return outcome


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def extend_lease(job_ids: list[int], worker_id: str) -> int:
    until = timezone.now() + timedelta(seconds=settings.JOB_RUNNING_LEASE_SECONDS)
    return Job.objects.filter(pk__in=job_ids, status=JobStatus.RUNNING, worker_id=worker_id).update(
        lease_expires_at=until
    )


class _LeaseKeeper:
    """One thread per worker process extends the leases of the jobs it runs, so a long job is
    never reaped while its process lives, and a dead process's jobs are reaped soon."""

    def __init__(self) -> None:
        self._jobs: dict[int, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def track(self, job_id: int, worker_id: str) -> None:
        import os

        with self._lock:
            self._jobs[job_id] = worker_id
            # Threads do not survive fork: start one in each process that runs jobs.
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="job-leases", daemon=True)
                self._thread.start()

    def untrack(self, job_id: int) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def _loop(self) -> None:
        interval = max(settings.JOB_RUNNING_LEASE_SECONDS / 3, 0.5)
        stop = threading.Event()
        while not stop.wait(interval):
            with self._lock:
                jobs = dict(self._jobs)
            if not jobs:
                continue
            try:
                for worker_id in set(jobs.values()):
                    extend_lease([j for j, w in jobs.items() if w == worker_id], worker_id)
            except Exception:  # noqa: BLE001 - keep trying; the reaper is the backstop
                log.exception("could not extend job leases")
                close_old_connections()


_leases = _LeaseKeeper()
