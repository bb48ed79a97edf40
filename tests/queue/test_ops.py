"""`manage.py jobs`, /health/queue and the producer's rules, without workers."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from penguinmails import heartbeat
from penguinmails.errors import IllegalTransition, ValidationFailed
from penguinmails.models import Job, JobStatus
from penguinmails.queue import live, runner
from penguinmails.queue.migrator import take_batch
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from penguinmails.queue.services import cancel_job

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # health probes read on their own connections
def test_it_fails_health_when_over_1000_jobs_waited_more_than_10_minutes(
    private_redis: str, settings: SettingsWrapper
) -> None:
    settings.HEALTH_TIMEOUT_MS = 1000  # about the backlog, not the deadline
    heartbeat.beat(live.client())
    # A job just finished: a long backlog behind busy workers, not a stalled queue.
    done = enqueue("platform.noop", {})
    assert runner.run(done.pk, worker_id="ops-test:1") == runner.Outcome.COMPLETED
    old = timezone.now() - dt.timedelta(minutes=11)
    enqueue_many([JobSpec("platform.noop", run_at=old) for _ in range(1000)])
    response = Client().get("/health/queue")
    assert response.status_code == 200, response.json()
    enqueue("platform.noop", {}, run_at=old)
    response = Client().get("/health/queue")
    assert response.status_code == 503
    jobs = response.json()["checks"]["jobs"]
    assert jobs["waiting_over_10_min"] == 1001
    assert "over 1000 jobs waiting over 10 minutes" in jobs["error"]
    assert jobs["oldest_waiting_age_s"] >= 660


def test_it_reports_status_as_json(private_redis: str) -> None:
    enqueue("platform.noop", {}, priority=200)
    out = StringIO()
    call_command("jobs", "status", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["by_status"] == {"queued": 1}
    assert report["waiting_by_queue"]["low"] == 1
    assert report["healthy"] is True


@pytest.mark.parametrize(
    "args",
    [
        ("retry",),
        ("retry", "1", "--dead"),
        ("retry", "999999"),
        ("cancel", "999999"),
        ("purge", "--completed-before", "yesterday"),
        ("purge", "--completed-before", "2999-01-01"),
    ],
)
def test_it_refuses_bad_arguments_with_a_reason(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        call_command("jobs", *args)


def test_it_cancels_a_waiting_job_and_refuses_to_retry_a_live_one() -> None:
    job = enqueue("platform.noop", {})
    with pytest.raises(CommandError, match="only dead or cancelled"):
        call_command("jobs", "retry", str(job.pk))
    call_command("jobs", "cancel", str(job.pk), stdout=StringIO())
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    with pytest.raises(IllegalTransition):
        cancel_job(job)


def test_it_purges_completed_jobs_before_a_date_and_keeps_dead_ones() -> None:
    done, dead = enqueue("platform.noop", {}), enqueue("platform.noop", {})
    long_ago = timezone.now() - dt.timedelta(days=30)
    Job.objects.filter(pk=done.pk).update(status=JobStatus.COMPLETED, finished_at=long_ago)
    Job.objects.filter(pk=dead.pk).update(status=JobStatus.DEAD, finished_at=long_ago)
    cutoff = (timezone.now() - dt.timedelta(days=20)).date().isoformat()
    call_command("jobs", "purge", "--completed-before", cutoff, stdout=StringIO())
    assert list(Job.objects.values_list("pk", flat=True)) == [dead.pk]


def test_it_returns_the_live_job_for_a_held_idempotency_key() -> None:
    first = enqueue("platform.noop", {}, idempotency_key="k1")
    again = enqueue("platform.noop", {}, idempotency_key="k1")
    many = enqueue_many([JobSpec("platform.noop", idempotency_key="k1")])
    assert again.pk == first.pk == many[0].pk
    assert Job.objects.count() == 1


def test_it_refuses_unknown_tasks_and_tenant_jobs_without_a_tenant() -> None:
    with pytest.raises(ValidationFailed):
        enqueue("no.such.task", {})
    with pytest.raises(ValidationFailed):
        enqueue("test.record_tenant", {"token": "x"})


@pytest.mark.django_db(transaction=True)
def test_it_lets_concurrent_migrators_take_each_ready_job_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    jobs = enqueue_many([JobSpec("platform.noop") for _ in range(600)])

    def take() -> list[int]:
        try:
            taken: list[int] = []
            while batch := take_batch(50):
                taken += [j.id for j in batch]
            return taken
        finally:
            connections.close_all()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: take(), range(4)))
    every = [i for r in results for i in r]
    assert sorted(every) == sorted(j.pk for j in jobs)
    assert sum(1 for r in results if r) > 1  # they really ran side by side


def _kill(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(status=JobStatus.DEAD, finished_at=timezone.now())


def test_it_retries_dead_jobs_that_share_an_idempotency_key_once() -> None:
    # A periodic job that keeps failing leaves several dead jobs with the same key.
    first = enqueue("platform.noop", {}, idempotency_key="periodic:x")
    _kill(first)
    second = enqueue("platform.noop", {}, idempotency_key="periodic:x")
    _kill(second)
    plain = enqueue("platform.noop", {})
    _kill(plain)
    out = StringIO()
    call_command("jobs", "retry", "--dead", stdout=out)
    assert "2 dead job(s) queued again" in out.getvalue()
    statuses = dict(Job.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: JobStatus.DEAD,
        second.pk: JobStatus.QUEUED,
        plain.pk: JobStatus.QUEUED,
    }
    # While the key is live, the other dead job is refused with a reason, not a crash.
    with pytest.raises(CommandError, match=f"live job {second.pk} holds"):
        call_command("jobs", "retry", str(first.pk))
    assert Job.objects.get(pk=first.pk).status == JobStatus.DEAD


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_delivery_does_not_skip_the_retry_backoff() -> None:
    from penguinmails.queue import live
    from penguinmails.queue.runner import Outcome, run

    token = f"backoff-{timezone.now().timestamp()}"
    live.client().set(f"test:fail:{token}", 1)
    job = enqueue("test.fail", {"token": token})
    assert run(job.pk, worker_id="t:1") == Outcome.RETRYING
    # A second message for the same job (urgent fast path and migrator both published it,
    # or the broker redelivered) arrives during the backoff: it must not run the job now.
    assert run(job.pk, worker_id="t:2") == Outcome.SKIPPED
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.RETRYING, 1)
