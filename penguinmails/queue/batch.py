"""Running several jobs delivered in one Celery message (`penguinmails.run_jobs`).

The migrator publishes the ready backlog in messages of up to JOB_MESSAGE_BATCH job ids (one
queue band each): the Celery overhead of a message (publish, deliver, ack) is then shared by the
jobs in it. Each job is still claimed on its own, when its turn comes, with the same conditional
UPDATE as a single delivery: the jobs not yet reached stay enqueued, so a worker killed midway
costs them no attempt (the redelivered message, or the reaper, gets them running again). A
success is recorded by the statement that claims the next job (one statement per job instead of
two), and its live status by the same Redis round trip as the next job's start. Each job gets
its own soft time limit (penguinmails.queue.timelimit).
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.utils import timezone

from penguinmails import metrics
from penguinmails.models import JobStatus
from penguinmails.queue import live, runner
from penguinmails.queue.runner import ClaimedJob, Outcome
from penguinmails.queue.states import check_move

# Records the successes of the previous job(s) and claims the next job in one round trip.
_COMPLETE_UPDATE = """
    UPDATE jobs SET status = %s, lease_expires_at = NULL, updated_at = %s, finished_at = %s
    FROM async_commit
    WHERE id = ANY(%s) AND worker_id = %s AND status = %s
    RETURNING id
"""
_ASYNC = "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))"
_COMPLETE_AND_CLAIM_SQL = (
    _ASYNC  # noqa: S608 - constant fragments, no input
    + ", done AS ("
    + _COMPLETE_UPDATE
    + "), claimed AS ("
    + runner._CLAIM_UPDATE
    + runner._RETURNING
    + ") SELECT ARRAY(SELECT id FROM done), claimed.* FROM (SELECT 1) AS one"
    + " LEFT JOIN claimed ON true"
)
_COMPLETE_SQL = _ASYNC + _COMPLETE_UPDATE


class _Batch:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.outcomes: dict[int, Outcome] = {}
        # Succeeded, not yet recorded: (job, seconds the handler took).
        self.pending: list[tuple[ClaimedJob, float]] = []

    def _complete_params(self, now: Any) -> list[Any]:
        check_move([JobStatus.RUNNING], JobStatus.COMPLETED)
        ids = [job.pk for job, _ in self.pending]
        return [
            JobStatus.COMPLETED.value, now, now, ids, self.worker_id, JobStatus.RUNNING.value
        ]  # fmt: skip

    def claim(self, job_id: int) -> ClaimedJob | None:
        """Record the pending successes and claim `job_id`, in one statement."""
        now = timezone.now()
        if not self.pending:
            return runner.claim(job_id, worker_id=self.worker_id)
        params = self._complete_params(now) + runner.claim_params(job_id, self.worker_id, now)
        with connection.cursor() as cursor:
            cursor.execute(runner._claim_sql(_COMPLETE_AND_CLAIM_SQL), params)
            row = cursor.fetchone()
        assert row is not None  # the LEFT JOIN always yields one row
        self._recorded(set(row[0] or ()), now)
        return None if row[1] is None else ClaimedJob.from_row(row[1:])

    def flush(self) -> None:
        if not self.pending:
            return
        now = timezone.now()
        runner._use_public()
        with connection.cursor() as cursor:
            cursor.execute(_COMPLETE_SQL, self._complete_params(now))
            moved = {row[0] for row in cursor.fetchall()}
        self._recorded(moved, now)
        live.set_statuses(self.take_statuses())

    def _recorded(self, moved: set[int], now: Any) -> None:
        self._finished_statuses = []
        for job, seconds in self.pending:
            if job.pk in moved:
                outcome = Outcome.COMPLETED
                self._finished_statuses.append(
                    (job.pk, {"status": JobStatus.COMPLETED.value, "worker": self.worker_id,
                              "finished": now.isoformat()})
                )  # fmt: skip
            else:
                runner.log.warning("job %s: lease lost before recording completed", job.pk)
                outcome = Outcome.LOST
            self.outcomes[job.pk] = outcome
            metrics.record_job(runner._task_label(job.task), outcome.value, seconds)
        self.pending = []

    def take_statuses(self) -> list[tuple[int, dict[str, str]]]:
        statuses, self._finished_statuses = getattr(self, "_finished_statuses", []), []
        return statuses

    def run_one(self, job_id: int) -> None:
        job = self.claim(job_id)
        statuses = self.take_statuses()
        if job is None:
            live.set_statuses(statuses)
            live.note_skipped_delivery(job_id)
            self.outcomes[job_id] = Outcome.SKIPPED
            return
        started_at = runner._iso(job.started_at)
        statuses.append(
            (job.pk, {"status": JobStatus.RUNNING.value, "worker": self.worker_id,
                      "started": started_at})
        )  # fmt: skip
        live.set_statuses(statuses)
        runner._leases.track(job.pk, self.worker_id)
        started = time.perf_counter()
        outcome = "error"
        try:
            outcome = runner._run_claimed(job, self.worker_id, record_completion=False).value
        finally:
            runner._leases.untrack(job.pk)
            runner._use_public()
            seconds = time.perf_counter() - started
            if outcome == Outcome.COMPLETED:
                self.pending.append((job, seconds))
            else:
                metrics.record_job(runner._task_label(job.task), outcome, seconds)
        if outcome != Outcome.COMPLETED:
            self.outcomes[job.pk] = Outcome(outcome)


def run_batch(job_ids: list[int], *, worker_id: str) -> dict[int, Outcome]:
    """Run the jobs in order, each claimed when its turn comes; returns each one's outcome."""
    if len(job_ids) == 1:
        return {job_ids[0]: runner.run(job_ids[0], worker_id=worker_id)}
    runner._recycle_connection_now_and_then()
    runner._use_public()
    batch = _Batch(worker_id)
    try:
        for job_id in job_ids:
            batch.run_one(job_id)
    finally:
        batch.flush()
    return batch.outcomes
