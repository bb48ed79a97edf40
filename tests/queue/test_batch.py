"""Several jobs in one Celery message (penguinmails.queue.batch): the migrator's batches."""

from __future__ import annotations

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from penguinmails.celery import app as celery_app
from penguinmails.models import Job, JobStatus
from penguinmails.queue import batch, live, runner
from penguinmails.queue.migrator import migrate_ready
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from penguinmails.queue.publisher import RUN_JOBS
from penguinmails.queue.runner import Outcome
from tests.queue.conftest import Worker, runs, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def token() -> str:
    return f"batch-{timezone.now().timestamp()}"


def test_a_batch_records_each_jobs_own_outcome(private_redis: str) -> None:
    failing = token()
    live.client().set(f"test:fail:{failing}", 1)
    first = enqueue("test.noop", {})
    retried = enqueue("test.fail", {"token": failing})
    done_before = enqueue("test.noop", {})
    last = enqueue("test.noop", {})
    assert runner.run(done_before.pk, worker_id="other:1") == Outcome.COMPLETED

    ids = [first.pk, retried.pk, done_before.pk, last.pk]
    outcomes = batch.run_batch(ids, worker_id="batch:1")

    assert outcomes == {
        first.pk: Outcome.COMPLETED,
        retried.pk: Outcome.RETRYING,
        done_before.pk: Outcome.SKIPPED,
        last.pk: Outcome.COMPLETED,
    }
    rows = {j.pk: j for j in Job.objects.filter(pk__in=ids)}
    for job in (first, last):
        row = rows[job.pk]
        assert (row.status, row.attempts, row.worker_id) == (JobStatus.COMPLETED, 1, "batch:1")
        assert row.finished_at is not None and row.lease_expires_at is None
        assert live.get_status(job.pk)["status"] == JobStatus.COMPLETED
    assert rows[retried.pk].status == JobStatus.RETRYING
    assert "FlakyError" in rows[retried.pk].last_error
    assert rows[done_before.pk].worker_id == "other:1"  # not run again
    assert live.get_status(done_before.pk)["skipped"] == "1"


def test_a_batch_gives_each_job_its_own_time_limit(private_redis: str) -> None:
    slow_token, next_token = token(), token() + "-next"
    slow = enqueue("test.slow", {"token": slow_token})
    after = enqueue("test.record", {"token": next_token})

    outcomes = batch.run_batch([slow.pk, after.pk], worker_id="batch:2")

    assert outcomes == {slow.pk: Outcome.RETRYING, after.pk: Outcome.COMPLETED}
    slow.refresh_from_db()
    assert slow.last_error.startswith("timed out after 1s")
    assert [r.get("finished") for r in runs(slow_token)] == [None]  # cut, not finished
    assert len(runs(next_token)) == 1


def test_the_migrator_puts_up_to_job_message_batch_jobs_of_a_queue_in_a_message(
    private_redis: str, settings: SettingsWrapper
) -> None:
    settings.JOB_MESSAGE_BATCH = 10
    live.client().flushdb()
    Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RETRYING]).delete()
    enqueue_many([JobSpec("test.noop", priority=100) for _ in range(25)])
    enqueue_many([JobSpec("test.noop", priority=200) for _ in range(3)])

    assert migrate_ready() == 28

    assert live.broker_depth() == {"high": 0, "default": 3, "low": 1}  # 10 + 10 + 5, and 3
    assert not Job.objects.filter(status=JobStatus.QUEUED, task="test.noop").exists()


def test_a_killed_batch_costs_the_jobs_it_had_not_reached_no_attempt(
    workers: dict[str, Worker],
) -> None:
    before, died, after = token() + "-a", token() + "-die", token() + "-b"
    jobs = [
        enqueue("test.record", {"token": before}),
        enqueue("test.die", {"token": died}, max_attempts=1),
        enqueue("test.record", {"token": after}),
    ]
    # One message to node a: its pool process dies at the second job.
    celery_app.send_task(RUN_JOBS, ([j.pk for j in jobs],), queue="node-a", ignore_result=True)

    def settled() -> bool:
        statuses = dict(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("pk", "status"))
        return set(statuses.values()) <= {JobStatus.COMPLETED, JobStatus.DEAD}

    wait_for(settled, timeout=90, what="the batch's jobs settled", pump=True)
    rows = {j.pk: j for j in Job.objects.filter(pk__in=[j.pk for j in jobs])}
    first, dead, last = (rows[j.pk] for j in jobs)
    assert (first.status, first.attempts) == (JobStatus.COMPLETED, 1)
    assert (dead.status, dead.attempts) == (JobStatus.DEAD, 1)
    # Reached only after the death (redelivered message, or the reaper): one attempt, one run.
    assert (last.status, last.attempts) == (JobStatus.COMPLETED, 1)
    assert len(runs(before)) == 1 and len(runs(after)) == 1
