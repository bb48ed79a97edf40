"""Running several jobs delivered in one Celery message (`penguinmails.run_jobs`).

The migrator publishes the ready backlog in messages of up to JOB_MESSAGE_BATCH job ids (one
queue band each): the Celery overhead of a message (publish, deliver, ack) is then shared by the
jobs in it. Each job is still claimed on its own, when its turn comes, with the same conditional
UPDATE as a single delivery: the jobs not yet reached stay enqueued, so a worker killed midway
costs them no attempt (the redelivered message, or the reaper, gets them running again). A
success is recorded by the statement that claims the next job (one statement per job instead of
two), and its live status by the same Redis round trip as the next job's start. Each job gets
its own soft time limit (penguinmails.queue.timelimit).

A batch from below the high queue stops early when urgent work waits: the worker's pool
processes may all be inside batches when an urgent job is published, and Celery fetches the next
message (high first) only when one of them acknowledges its message. So between jobs the batch
looks at the high queue's length (in the Redis round trip it makes anyway, or a fresh LLEN after
a job that took a while); if anything waits there, the jobs it has not reached are published
again as one message to the back of their queue, still enqueued, and the message is
acknowledged. An urgent job then waits at most for the job being run, not for a whole batch.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.utils import timezone

from penguinmails import metrics
from penguinmails.models import Job, JobStatus
from penguinmails.queue import live, runner
from penguinmails.queue.publisher import Publishable, publish
from penguinmails.queue.queues import Queue
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

# A look at the high queue piggybacks on the job's start (the live-status round trip); after a
# job that ran longer than this, a fresh LLEN is taken before going on (cheap next to the job).
PEEK_FRESH_SECONDS = 0.005


class _Batch:
    def __init__(self, worker_id: str, *, yield_to: str | None = None) -> None:
        self.worker_id = worker_id
        # The queue whose waiting messages end the batch early (None: never).
        self.yield_to = yield_to
        self.urgent_waiting = 0
        self.peeked_at = 0.0
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
            self._peeked(live.set_statuses(statuses, peek=self.yield_to))
            live.note_skipped_delivery(job_id)
            self.outcomes[job_id] = Outcome.SKIPPED
            return
        started_at = runner._iso(job.started_at)
        statuses.append(
            (job.pk, {"status": JobStatus.RUNNING.value, "worker": self.worker_id,
                      "started": started_at})
        )  # fmt: skip
        self._peeked(live.set_statuses(statuses, peek=self.yield_to))
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

    def _peeked(self, waiting: int) -> None:
        self.urgent_waiting = waiting
        self.peeked_at = time.perf_counter()

    def should_yield(self) -> bool:
        """Whether urgent messages wait (looked at again if the last look is stale)."""
        if self.yield_to is None:
            return False
        if time.perf_counter() - self.peeked_at > PEEK_FRESH_SECONDS:
            self._peeked(live.waiting_messages(self.yield_to))
        return self.urgent_waiting > 0

    def hand_back(self, job_ids: list[int]) -> bool:
        """Publish the jobs not reached (those still enqueued, in order) as one new message to
        the back of their queue; they keep their status and enqueued lease, so nothing is
        written. False if the publish failed: the batch then simply goes on."""
        found = {
            pk: Publishable(pk, priority, task)
            for pk, priority, task in Job.objects.filter(
                pk__in=job_ids, status=JobStatus.ENQUEUED
            ).values_list("id", "priority", "task")
        }
        again = [found[pk] for pk in job_ids if pk in found]
        try:
            publish(again, per_message=len(again))
        except Exception:  # noqa: BLE001 - a hint not acted on; the jobs run here instead
            runner.log.warning("jobs %s not handed back; running them in this batch", job_ids)
            return False
        for pk in job_ids:
            # Not enqueued any more: another delivery has them (or they were reaped).
            self.outcomes[pk] = Outcome.HANDED_BACK if pk in found else Outcome.SKIPPED
        return True


def run_batch(
    job_ids: list[int], *, worker_id: str, delivered_from: str | None = None
) -> dict[int, Outcome]:
    """Run the jobs in order, each claimed when its turn comes; returns each one's outcome.

    `delivered_from` is the Celery queue the message came from: a batch from below the high
    queue stops early when urgent work waits there, handing the jobs it has not reached back
    (Outcome.HANDED_BACK)."""
    if len(job_ids) == 1:
        return {job_ids[0]: runner.run(job_ids[0], worker_id=worker_id)}
    runner._recycle_connection_now_and_then()
    runner._use_public()
    below_high = delivered_from is not None and delivered_from != Queue.HIGH
    batch = _Batch(worker_id, yield_to=Queue.HIGH.value if below_high else None)
    try:
        for index, job_id in enumerate(job_ids):
            if index and batch.should_yield() and batch.hand_back(job_ids[index:]):
                break
            batch.run_one(job_id)
    finally:
        batch.flush()
    return batch.outcomes
