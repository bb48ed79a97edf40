"""The worker side: claim a job, run its handler in the right schema, record the outcome.

Called by the thin Celery task `penguinmails.run_job(job_id)`. Delivery is at least once (acks
late, redelivery when a worker dies, the reaper); the conditional claim makes a duplicate
delivery a no-op, so a handler runs once per claim.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from django_tenants.utils import get_tenant_model, schema_context

from penguinmails import metrics
from penguinmails.db import TenantConnection
from penguinmails.models import CLAIMABLE_STATUSES, Job, JobStatus
from penguinmails.queue import live
from penguinmails.queue.registry import Handler, JobContext, UnknownHandler, get_handler
from penguinmails.queue.states import check_move
from penguinmails.queue.timelimit import soft_time_limit

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    SKIPPED = "skipped"  # another delivery holds or finished the job
    COMPLETED = "completed"
    RETRYING = "retrying"
    DEAD = "dead"
    LOST = "lost"  # the lease was taken from us (reaped) before we could record the outcome
    # Not reached: its batch stopped for urgent work and published it again (queue.batch).
    HANDED_BACK = "handed_back"


def backoff_seconds(attempt: int) -> float:
    """Seed: exponential from 2 s. Jitter adds up to a quarter, so delays still always grow."""
    base = settings.JOB_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return base + random.uniform(0, base / 4)


def run(job_id: int, *, worker_id: str) -> Outcome:
    _recycle_connection_now_and_then()
    # Whatever a previous job did, this one starts in public.
    _use_public()
    job = claim(job_id, worker_id=worker_id)
    if job is None:
        live.note_skipped_delivery(job_id)
        return Outcome.SKIPPED
    live.set_status(
        job.pk, status=JobStatus.RUNNING, worker=worker_id, started=_iso(job.started_at)
    )
    _leases.track(job.pk, worker_id)
    started = time.perf_counter()
    outcome = "error"  # _run_claimed records every handler failure: this is our own failing
    try:
        outcome = _run_claimed(job, worker_id).value
        return Outcome(outcome)
    finally:
        _leases.untrack(job.pk)
        _use_public()
        metrics.record_job(_task_label(job.task), outcome, time.perf_counter() - started)


def _task_label(task: str) -> str:
    """The metrics label of a task: its name when registered, so a row naming garbage cannot
    grow the label set."""
    try:
        return get_handler(task).name
    except UnknownHandler:
        return "<unknown>"


# The worker's two bookkeeping writes are single statements in autocommit: no BEGIN/COMMIT round
# trips, and `set_config(..., true)` makes that statement's commit skip the wait for the disk.
# PostgreSQL writes its log in order, so a crash only loses the newest commits: their jobs go
# back a step and run again (delivery is at least once anyway). Enqueues, in the producer's
# transaction, stay fully durable. Both moves are checked against the state machine (check_move)
# and conditional on the current status, like every transition.
# The claimed row, and its tenant's schema in the same round trip (NULL when the tenant row is
# gone: the job is then refused, never run in public).
_RETURNING = """
    RETURNING id, task, tenant_id, payload, attempts, max_attempts, started_at,
              (SELECT t.schema_name FROM {tenants} t WHERE t.id = jobs.tenant_id)
"""
_CLAIM_UPDATE = """
    UPDATE jobs SET status = %s, attempts = attempts + 1, worker_id = %s, started_at = %s,
                    lease_expires_at = %s, updated_at = %s
    FROM async_commit
    WHERE id = %s AND status = ANY(%s)
      -- A stale duplicate message must not start a job waiting out its retry backoff (or
      -- scheduled later): only published jobs, or jobs already due, are claimable.
      AND (status = %s OR run_at <= %s)
"""
_CLAIM_SQL = (
    "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))"
    + _CLAIM_UPDATE
    + _RETURNING
)


def _claim_sql(template: str) -> str:
    """The statement with the tenant table's name filled in (computed once per process)."""
    sql = _sql_cache.get(template)
    if sql is None:
        tenants = connection.ops.quote_name(get_tenant_model()._meta.db_table)
        sql = _sql_cache[template] = template.replace("{tenants}", tenants)
    return sql


_sql_cache: dict[str, str] = {}


def claim_params(job_id: int, worker_id: str, now: datetime) -> list[Any]:
    """The parameters of _CLAIM_UPDATE, checked against the state machine."""
    check_move(CLAIMABLE_STATUSES, JobStatus.RUNNING)
    lease = now + timedelta(seconds=settings.JOB_RUNNING_LEASE_SECONDS)
    return [
        JobStatus.RUNNING.value, worker_id, now, lease, now, job_id,
        [str(s) for s in CLAIMABLE_STATUSES], JobStatus.ENQUEUED.value, now,
    ]  # fmt: skip


@dataclass(frozen=True)
class ClaimedJob:
    """What the worker needs of a job it claimed (no ORM instance: building one costs more than
    the claim's round trip)."""

    pk: int
    task: str
    tenant_id: int | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    started_at: datetime | None
    # The tenant's schema, read with the claim; None for a platform job or a vanished tenant.
    schema_name: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ClaimedJob:
        pk, task, tenant_id, payload, attempts, max_attempts, started_at, schema_name = row
        if isinstance(payload, str):  # jsonb arrives parsed, but be safe with a text column
            payload = json.loads(payload)
        return cls(pk, task, tenant_id, payload, attempts, max_attempts, started_at, schema_name)


_last_recycle_check = 0.0


def _recycle_connection_now_and_then() -> None:
    """close_old_connections() honours CONN_MAX_AGE (a connection that visited many tenant schemas
    carries their catalog caches) and drops broken connections, but with health checks on it
    costs a `SELECT 1` on the next query: once a second is enough."""
    global _last_recycle_check
    now = time.monotonic()
    if now - _last_recycle_check >= 1.0:
        _last_recycle_check = now
        close_old_connections()


def claim(job_id: int, *, worker_id: str) -> ClaimedJob | None:
    """The conditional UPDATE only one claimer wins; None when someone else has the job."""
    params = claim_params(job_id, worker_id, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(_CLAIM_SQL), params)
        row = cursor.fetchone()
    return None if row is None else ClaimedJob.from_row(row)


def _run_claimed(job: ClaimedJob, worker_id: str, *, record_completion: bool = True) -> Outcome:
    """Run a claimed job's handler and record a failure. A success is recorded too, unless the
    caller (a batch) records it itself with its next claim: then COMPLETED means "to record"."""
    try:
        handler = get_handler(job.task)
    except UnknownHandler as exc:
        return _finish_dead(job, worker_id, str(exc))
    schema = "public"
    if job.tenant_id is not None:
        if job.schema_name is None:
            return _finish_dead(
                job, worker_id, f"tenant {job.tenant_id} no longer exists; refused to run"
            )
        schema = job.schema_name
    elif handler.tenant_scoped:
        return _finish_dead(job, worker_id, "tenant job without a tenant; refused to run in public")

    def heartbeat() -> None:
        extend_lease([job.pk], worker_id)

    context = JobContext(
        job_id=job.pk,
        attempt=job.attempts,
        tenant_id=job.tenant_id,
        schema_name=schema,
        worker_id=worker_id,
        heartbeat=heartbeat,
    )
    # A batch's jobs share one Celery message, so each gets its own soft limit here.
    limit = None if record_completion else handler.timeout
    try:
        with soft_time_limit(limit):
            if schema == "public":
                handler.func(job.payload, context)
            else:
                with schema_context(schema):
                    handler.func(job.payload, context)
    except SoftTimeLimitExceeded:
        return _finish_failed(job, worker_id, handler, f"timed out after {handler.timeout}s", True)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        error = f"{type(exc).__name__}: {exc}"
        return _finish_failed(job, worker_id, handler, error, isinstance(exc, handler.transient))
    if not record_completion:
        return Outcome.COMPLETED
    return _finish(job, worker_id, JobStatus.COMPLETED, Outcome.COMPLETED)


def _finish_failed(
    job: ClaimedJob, worker_id: str, handler: Handler, error: str, transient: bool
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


def _finish_dead(job: ClaimedJob, worker_id: str, error: str) -> Outcome:
    return _finish(job, worker_id, JobStatus.DEAD, Outcome.DEAD, last_error=error[:5000])


_FINISH_SQL = """
    WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE jobs SET status = %s, lease_expires_at = NULL, updated_at = %s,
                    finished_at = coalesce(%s, finished_at), run_at = coalesce(%s, run_at),
                    last_error = coalesce(%s, last_error)
    FROM async_commit
    WHERE id = %s AND worker_id = %s AND status = %s
"""


def _finish(
    job: ClaimedJob,
    worker_id: str,
    to: str,
    outcome: Outcome,
    *,
    run_at: datetime | None = None,
    last_error: str | None = None,
) -> Outcome:
    check_move([JobStatus.RUNNING], to)
    if outcome != Outcome.COMPLETED and connection.connection is not None:
        # A failing handler may have broken the connection (say its query was killed):
        # reconnect rather than lose the outcome. (Checked only on failure: it costs a query.)
        if not connection.is_usable():
            connection.close()
    _use_public()
    now = timezone.now()
    finished = None if to == JobStatus.RETRYING else now
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_SQL,
            [to, now, finished, run_at, last_error, job.pk, worker_id, JobStatus.RUNNING.value],
        )
        moved = cursor.rowcount
    if not moved:
        log.warning("job %s: lease lost before recording %s; it will run again", job.pk, to)
        return Outcome.LOST
    live.set_status(job.pk, status=to, worker=worker_id, finished=_iso(now))
    return outcome


def _use_public() -> None:
    # Only when needed: every switch makes django-tenants issue SET search_path again.
    db = cast(TenantConnection, connection)
    if db.schema_name != "public":
        db.set_schema_to_public()


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
