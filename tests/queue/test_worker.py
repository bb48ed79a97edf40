"""The queue end to end, with real Redis, real Celery worker processes and real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from penguinmails.models import Job, JobStatus
from penguinmails.queue import live
from penguinmails.queue.migrator import migrate_ready
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from penguinmails.tasks import run_job
from tests.conftest import Cast
from tests.queue.conftest import (
    ROOT,
    Worker,
    effect_runs,
    runs,
    start_worker,
    subprocess_env,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def token() -> str:
    return uuid.uuid4().hex


def status_of(job: Job) -> str:
    job.refresh_from_db()
    return job.status


def test_it_never_runs_a_job_whose_transaction_rolled_back(workers: dict[str, Worker]) -> None:
    doomed_token = token()
    with pytest.raises(RuntimeError), transaction.atomic():
        urgent = enqueue("test.record", {"token": doomed_token}, priority=10)
        later = enqueue("test.record", {"token": doomed_token}, priority=100)
        raise RuntimeError("the caller's change failed")
    # A committed urgent job goes through the same high queue after the doomed one would have.
    sentinel = enqueue("test.record", {"token": token()}, priority=10)
    wait_for(lambda: status_of(sentinel) == JobStatus.COMPLETED, timeout=30, what="sentinel")
    wait_for(lambda: migrate_ready() == 0, timeout=10, what="nothing left to migrate")

    assert runs(doomed_token) == []
    assert not Job.objects.filter(pk__in=[urgent.pk, later.pk]).exists()
    # No worker ever received the doomed ids (a delivery would leave a skipped count).
    assert live.get_status(urgent.pk) == {}


def test_it_starts_an_urgent_job_before_1000_waiting_low_priority_jobs(
    workers: dict[str, Worker],
) -> None:
    """What `-Q high,default,low` with the priority queue order promises: a worker that becomes
    free takes a waiting urgent job before any low-priority one. It does not promise a strict
    order across workers that become free at the same instant: when both gates open, the worker
    that does not get the urgent job takes a low one in that same instant, and may start it (and,
    if the other worker is slow to start the urgent job under load, a few more) a moment before
    the urgent job starts. So this checks the order on the worker that ran the urgent job, which
    is exact (one job at a time), and that the urgent job did not wait behind the backlog."""
    gate = token()
    # Hold both workers (prefetch 1 and late acks: a worker holding a job fetches nothing more),
    # so the backlog and the urgent job are all waiting in the broker when they come free.
    for _ in workers:
        enqueue("test.gate", {"token": gate}, priority=0)
    wait_for(lambda: len(runs(gate)) == len(workers), timeout=30, what="workers held")
    lows = enqueue_many([JobSpec("test.noop", priority=200) for _ in range(1000)])
    published: list[int] = []

    def all_published() -> bool:
        published.append(migrate_ready())
        return sum(published) == 1000

    wait_for(all_published, timeout=30, what="the backlog published")
    urgent = enqueue("test.record", {"token": token()}, priority=10)
    depth = live.broker_depth()
    # The backlog travels in messages of JOB_MESSAGE_BATCH jobs.
    assert (depth["high"], depth["low"]) == (1, -(-1000 // settings.JOB_MESSAGE_BATCH))
    live.client().set(f"test:gate:{gate}", 1)

    ids = [j.pk for j in lows]
    wait_for(
        lambda: Job.objects.filter(pk__in=ids, status=JobStatus.COMPLETED).count() == 1000,
        timeout=120,
        what="the low-priority backlog",
    )
    urgent.refresh_from_db()
    assert urgent.status == JobStatus.COMPLETED
    assert urgent.started_at is not None
    # The first fetch after the gates opened took the urgent job, so on the worker (pool process)
    # that ran it, it came before every low-priority job; under broken priority that worker would
    # first have run low jobs from the front of the backlog.
    low_jobs = Job.objects.filter(pk__in=ids)
    same_worker = low_jobs.filter(worker_id=urgent.worker_id)
    jumped = same_worker.filter(started_at__lt=urgent.started_at).count()
    assert jumped == 0, f"{urgent.worker_id} ran {jumped} low-priority jobs before the urgent one"
    # And it started while the backlog was still waiting, not behind it: the other worker can
    # only have run the few low jobs it fetched alongside (and while the urgent job was being
    # handed to its pool process).
    ran_before = low_jobs.filter(started_at__lt=urgent.started_at).count()
    assert ran_before < 100, f"{ran_before} of 1000 low-priority jobs started before the urgent one"


def test_it_retries_a_failing_job_with_growing_delays_then_it_is_dead_and_jobs_retry_revives_it(
    workers: dict[str, Worker],
) -> None:
    flaky = token()
    live.client().set(f"test:fail:{flaky}", 1)
    job = enqueue("test.fail", {"token": flaky})
    wait_for(lambda: status_of(job) == JobStatus.DEAD, timeout=60, what="dead", pump=True)

    attempts = runs(flaky)
    assert [r["attempt"] for r in attempts] == [1, 2, 3]
    first_gap = attempts[1]["at"] - attempts[0]["at"]
    second_gap = attempts[2]["at"] - attempts[1]["at"]
    # Base 1 s in these workers (JOB_RETRY_BASE_MS): about 1 s, then about 2 s.
    assert 1.0 <= first_gap < second_gap
    assert second_gap >= 2.0
    assert job.attempts == 3
    assert job.last_error == "FlakyError: flaky on attempt 3"

    live.client().delete(f"test:fail:{flaky}")
    call_command("jobs", "retry", str(job.pk))
    wait_for(lambda: status_of(job) == JobStatus.COMPLETED, timeout=30, what="revived", pump=True)
    assert job.attempts == 1
    assert len(runs(flaky)) == 4


def test_it_marks_dead_at_once_a_job_failing_with_an_unlisted_error(
    workers: dict[str, Worker],
) -> None:
    job = enqueue("test.record", {})  # no token: KeyError, which no handler lists as transient
    wait_for(lambda: status_of(job) == JobStatus.DEAD, timeout=30, what="dead", pump=True)
    assert job.attempts == 1
    assert job.last_error == "KeyError: 'token'"


def test_it_runs_the_handler_once_when_two_workers_get_the_same_job_at_once(
    workers: dict[str, Worker],
) -> None:
    key = token()
    job = enqueue("test.effect", {"key": key, "sleep": 0.5})
    # The same job delivered to both worker nodes, as a redelivery or a double publish would.
    run_job.apply_async((job.pk,), queue="node-a")
    run_job.apply_async((job.pk,), queue="node-b")
    wait_for(
        lambda: (
            live.get_status(job.pk).get("skipped") == "1" and status_of(job) == JobStatus.COMPLETED
        ),
        timeout=30,
        what="both deliveries handled",
    )
    assert effect_runs(key) == 1
    assert len(runs(key)) == 1
    assert job.attempts == 1


def test_it_runs_a_tenant_job_in_its_schema_and_the_next_job_in_public(
    workers: dict[str, Worker], cast: Cast
) -> None:
    expires = timezone.now() + dt.timedelta(days=1)
    for schema, key in (
        (cast.tenant.schema_name, "acme-session"),
        (cast.other_tenant.schema_name, "globex-session"),
        ("public", "public-session"),
    ):
        with schema_context(schema):
            Session.objects.create(session_key=key, session_data="x", expire_date=expires)
    seen = token()
    tenant_job = enqueue("test.record_tenant", {"token": seen}, tenant=cast.tenant)
    platform_job = enqueue("test.record", {"token": seen})
    # Both to worker a's own queue, in order: the same pool process runs one after the other.
    run_job.apply_async((tenant_job.pk,), queue="node-a")
    run_job.apply_async((platform_job.pk,), queue="node-a")
    wait_for(lambda: len(runs(seen)) == 2, timeout=30, what="both jobs")

    in_tenant, after = runs(seen)
    assert in_tenant["job_id"] == tenant_job.pk
    assert in_tenant["schema"] == cast.tenant.schema_name
    assert in_tenant["sessions"] == ["acme-session"]
    assert after["pid"] == in_tenant["pid"]
    assert after["schema"] == "public"
    assert after["sessions"] == ["public-session"]


def test_it_refuses_a_tenant_job_whose_tenant_is_missing(workers: dict[str, Worker]) -> None:
    seen = token()
    job = enqueue("test.record", {"token": seen})
    # A tenant deleted after the job was made (the FK deliberately has no constraint).
    Job.objects.filter(pk=job.pk).update(tenant_id=987654)
    orphan = enqueue("test.record", {"token": seen})
    Job.objects.filter(pk=orphan.pk).update(task="test.record_tenant")
    run_job.apply_async((job.pk,), queue="node-a")
    run_job.apply_async((orphan.pk,), queue="node-a")
    wait_for(
        lambda: status_of(job) == JobStatus.DEAD and status_of(orphan) == JobStatus.DEAD,
        timeout=30,
        what="both refused",
    )
    assert job.last_error == "tenant 987654 no longer exists; refused to run"
    assert orphan.last_error == "tenant job without a tenant; refused to run in public"
    assert runs(seen) == []


def test_it_completes_a_job_whose_worker_was_killed_midway_with_its_effect_once(
    workers: dict[str, Worker], private_redis: str, tmp_path: Path
) -> None:
    key = token()
    doomed = start_worker("c", private_redis, tmp_path)
    try:
        job = enqueue("test.effect", {"key": key, "first_sleep": 60})
        run_job.apply_async((job.pk,), queue="node-c")
        wait_for(lambda: runs(key), timeout=30, what="the job to start on worker c")
        doomed.kill()
    finally:
        doomed.stop()
    assert status_of(job) == JobStatus.RUNNING
    assert effect_runs(key) == 0

    wait_for(lambda: status_of(job) == JobStatus.COMPLETED, timeout=60, what="rerun", pump=True)
    first, second = runs(key)
    assert first["worker"].startswith("c@") and not second["worker"].startswith("c@")
    assert job.attempts == 2
    assert effect_runs(key) == 1


def test_it_marks_dead_a_job_that_kills_its_process_each_time_without_blocking_others(
    workers: dict[str, Worker],
) -> None:
    deadly, fine = token(), token()
    job = enqueue("test.die", {"token": deadly})
    other = enqueue("test.record", {"token": fine})
    wait_for(lambda: status_of(other) == JobStatus.COMPLETED, timeout=30, what="other", pump=True)
    wait_for(lambda: status_of(job) == JobStatus.DEAD, timeout=90, what="dead", pump=True)
    assert job.attempts == 3
    assert len(runs(deadly)) == 3
    assert "worker lost" in job.last_error


def test_it_completes_all_1000_jobs_when_redis_is_flushed_midway(
    workers: dict[str, Worker], private_redis: str, tmp_path: Path
) -> None:
    prefix = token()
    jobs = enqueue_many(
        [JobSpec("test.effect", {"key": f"{prefix}-{i}", "sleep": 0.01}) for i in range(1000)]
    )
    ids = [j.pk for j in jobs]
    done = Job.objects.filter(pk__in=ids, status=JobStatus.COMPLETED)
    # The real beat: it schedules the migrator and the reaper, which the workers run.
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "penguinmails", "beat", "-s", tmp_path / "beat"],
        cwd=ROOT,
        env=subprocess_env(private_redis),
        stdout=(tmp_path / "beat.log").open("wb"),
        stderr=subprocess.STDOUT,
    )

    # The migrator publishes full messages of JOB_MESSAGE_BATCH jobs here (one queue).
    def jobs_in_broker() -> int:
        return sum(live.broker_depth().values()) * settings.JOB_MESSAGE_BATCH

    try:
        wait_for(
            lambda: done.count() >= 50 and jobs_in_broker() > 100,
            timeout=60,
            what="jobs flowing",
        )
        in_broker = jobs_in_broker()
        assert redis.Redis.from_url(private_redis).flushall()
        # (No depth check after the flush: the migrator may already be publishing again.)
        assert in_broker > 100
        assert done.count() < 1000
        wait_for(lambda: done.count() == 1000, timeout=180, what="all 1000 completed")
    finally:
        beat.terminate()
        beat.wait(15)
    with transaction.atomic():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), max(runs) FROM public.queue_test_effects WHERE key LIKE %s",
                [f"{prefix}-%"],
            )
            count, most = cursor.fetchone()
    assert (count, most) == (1000, 1)
