"""Urgent work overtakes a backlog (penguinmails.queue.batch): a batch of normal jobs stops at the
next job when something waits in the high queue, and hands the jobs it has not reached back to
the broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from penguinmails.celery import app as celery_app
from penguinmails.models import Job, JobStatus
from penguinmails.queue import batch, live
from penguinmails.queue.migrator import migrate_ready
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from penguinmails.queue.publisher import RUN_JOBS
from penguinmails.queue.queues import Queue
from penguinmails.queue.runner import Outcome
from tests.queue.conftest import Worker, effect_runs, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def token() -> str:
    return uuid.uuid4().hex


def _messages(queue: str) -> list[dict[str, Any]]:
    """The Celery messages waiting in a queue, oldest first (kombu LPUSHes, BRPOPs)."""
    import json

    raw = live.client().lrange(queue, 0, -1)
    return [json.loads(m) for m in reversed(raw)]  # type: ignore[union-attr]


def _drain(*queues: str) -> None:
    for queue in queues:
        live.client().delete(queue)


def _urgent_message_waiting() -> None:
    """A message in the high queue, as the producer's fast path leaves one (no worker runs
    in these in-process tests, so it stays there until removed)."""
    celery_app.send_task("penguinmails.noop", queue=Queue.HIGH.value, ignore_result=True)


def test_it_hands_back_the_jobs_not_reached_when_urgent_work_waits(private_redis: str) -> None:
    _drain(Queue.HIGH, Queue.DEFAULT)
    jobs = enqueue_many([JobSpec("test.noop", priority=100) for _ in range(4)])
    migrate_ready()  # enqueued, in one message (drained: this test plays the worker)
    _drain(Queue.DEFAULT)
    _urgent_message_waiting()
    try:
        ids = [j.pk for j in jobs]
        outcomes = batch.run_batch(ids, worker_id="batch:u", delivered_from=Queue.DEFAULT)
    finally:
        _drain(Queue.HIGH)

    # The first job runs (a batch never hands back everything), the rest go back.
    assert outcomes == {
        ids[0]: Outcome.COMPLETED,
        ids[1]: Outcome.HANDED_BACK,
        ids[2]: Outcome.HANDED_BACK,
        ids[3]: Outcome.HANDED_BACK,
    }
    rows = {j.pk: j for j in Job.objects.filter(pk__in=ids)}
    assert (rows[ids[0]].status, rows[ids[0]].attempts) == (JobStatus.COMPLETED, 1)
    for pk in ids[1:]:
        # Not claimed, so no attempt spent; still enqueued with its lease.
        assert (rows[pk].status, rows[pk].attempts) == (JobStatus.ENQUEUED, 0)
        assert rows[pk].lease_expires_at is not None
    # One new message at the back of the default queue, the same jobs in the same order.
    [message] = _messages(Queue.DEFAULT)
    assert message["headers"]["task"] == RUN_JOBS
    assert message["headers"]["argsrepr"] == repr((ids[1:],))
    _drain(Queue.DEFAULT)
    Job.objects.filter(pk__in=ids).delete()


def test_it_runs_the_whole_batch_when_the_batch_came_from_the_high_queue(
    private_redis: str,
) -> None:
    _drain(Queue.HIGH, Queue.DEFAULT)
    jobs = enqueue_many([JobSpec("test.noop", priority=50) for _ in range(3)])
    migrate_ready()
    _drain(Queue.HIGH)
    _urgent_message_waiting()  # the same band: overtaking it would only reorder the band
    try:
        outcomes = batch.run_batch(
            [j.pk for j in jobs], worker_id="batch:h", delivered_from=Queue.HIGH
        )
    finally:
        _drain(Queue.HIGH)

    assert set(outcomes.values()) == {Outcome.COMPLETED}
    assert _messages(Queue.DEFAULT) == []


def test_it_runs_the_whole_batch_when_nothing_urgent_waits(private_redis: str) -> None:
    _drain(Queue.HIGH, Queue.DEFAULT)
    jobs = enqueue_many([JobSpec("test.noop", priority=100) for _ in range(3)])
    migrate_ready()
    _drain(Queue.DEFAULT)

    outcomes = batch.run_batch(
        [j.pk for j in jobs], worker_id="batch:d", delivered_from=Queue.DEFAULT
    )

    assert set(outcomes.values()) == {Outcome.COMPLETED}
    assert _messages(Queue.DEFAULT) == []


@pytest.fixture(scope="module")
def lone_worker(
    django_db_setup: None,
    django_db_blocker: Any,
    private_redis: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    """One worker node with one pool process: busy with a batch, nothing else can serve."""
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS public.queue_test_effects "
                "(key text PRIMARY KEY, runs integer NOT NULL)"
            )
    worker = start_worker("lone", private_redis, tmp_path_factory.mktemp("lone"))
    try:
        yield worker
    finally:
        worker.stop()


@pytest.mark.slow
def test_an_urgent_job_overtakes_a_batch_being_worked(
    lone_worker: Worker, settings: SettingsWrapper
) -> None:
    settings.JOB_MESSAGE_BATCH = 10
    wait_for(
        lambda: (
            sum(live.broker_depth().values()) == 0
            and not Job.objects.filter(status=JobStatus.RUNNING).exists()
        ),
        timeout=60,
        what="the broker and the worker idle",
    )
    keys = [token() for _ in range(10)]
    backlog = enqueue_many(
        [JobSpec("test.effect", {"key": k, "sleep": 0.4}, priority=100) for k in keys]
    )
    assert migrate_ready() == 10  # one message of 10 to `default`
    first = Job.objects.filter(pk=backlog[0].pk)
    wait_for(
        lambda: first.filter(status=JobStatus.RUNNING).exists(),
        timeout=30,
        what="the batch's first job running",
    )

    urgent = enqueue("test.record", {"token": token()}, priority=10)

    ids = [j.pk for j in backlog] + [urgent.pk]
    wait_for(
        lambda: Job.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() == len(ids),
        timeout=60,
        what="the backlog and the urgent job completed",
    )
    started = dict(Job.objects.filter(pk__in=ids).values_list("pk", "started_at"))
    # Without the hand-back the urgent job waits for all ten (4 s); with it, for the one running.
    assert started[urgent.pk] < started[backlog[1].pk]
    # The backlog keeps its order, and each job ran exactly once with one attempt.
    assert [started[j.pk] for j in backlog] == sorted(started[j.pk] for j in backlog)
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    assert [effect_runs(k) for k in keys] == [1] * 10
