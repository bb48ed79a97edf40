"""Benchmark of the durable job queue against plain Celery (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/queue.py

Uses its own database (pm_bench_queue on DATABASE_URL's server, dropped afterwards) and its own
redis-server on a free loopback port, and starts its own worker processes and beat. Prints, side
by side:
1. throughput of N no-op jobs through the queue vs the same no-op task sent with plain
   `.delay()`, one worker node (-c BENCH_CONCURRENCY);
2. enqueue-to-start latency p50/p99 of urgent jobs on an idle system;
3. the same latency with BENCH_WAITING (100,000) no-op jobs waiting, being worked meanwhile;
4. throughput again with two worker nodes (-n w1@%h, -n w2@%h), each with the same concurrency,
   counting completions: every job completed, each claimed (so run) exactly once.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named queue.py: its folder must not shadow the standard library's `queue`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench._harness import (  # noqa: E402
    bench_database,
    celery_processes,
    private_redis,
    setup_django,
    wait,
)

N = int(os.environ.get("BENCH_JOBS", "10000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "200"))
WAITING = int(os.environ.get("BENCH_WAITING", "100000"))
CONCURRENCY = os.environ.get("BENCH_CONCURRENCY", "2")
DB_NAME = os.environ.get("BENCH_QUEUE_DB", "pm_bench_queue")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-queue-"))
    try:
        with bench_database(DB_NAME), private_redis(tmp) as redis_url:
            setup_django()
            import redis

            client = redis.Redis.from_url(redis_url)
            with celery_processes(tmp, CONCURRENCY):
                warm_up()
                celery1, queue1, _ = throughput(client)
                idle = urgent_latencies()
                busy = urgent_latencies(waiting=WAITING) if WAITING else []
            reset(client)
            with celery_processes(tmp, CONCURRENCY, nodes=("w1", "w2")):
                warm_up()
                celery2, queue2, check = throughput(client)
        report(celery1, queue1, idle, busy, celery2, queue2, check)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def warm_up() -> None:
    from penguinmails.models import Job
    from penguinmails.queue.producer import enqueue

    warm = [enqueue("platform.noop", {}, priority=10) for _ in range(20)]
    wait(
        lambda: Job.objects.filter(pk__in=[j.pk for j in warm], status="completed").count() == 20,
        60,
        "warm-up",
    )


def throughput(client: Any) -> tuple[float, float, str]:
    """(plain Celery jobs/s, durable queue jobs/s, what the completion count found)."""
    from penguinmails.models import Job, JobStatus
    from penguinmails.queue.producer import JobSpec, enqueue_many
    from penguinmails.tasks import noop

    # Plain Celery: send N with .delay(); done when the broker holds nothing, acked or not.
    started = time.perf_counter()
    for _ in range(N):
        noop.delay()
    wait(
        lambda: client.llen("default") == 0 and client.hlen("unacked") == 0,
        600,
        "celery",
        interval=0.25,
    )
    celery_rate = N / (time.perf_counter() - started)

    # The durable queue: N rows in one transaction; beat's migrator publishes, workers claim,
    # run and complete each one in PostgreSQL.
    started = time.perf_counter()
    jobs = enqueue_many([JobSpec("platform.noop") for _ in range(N)])
    first, last = jobs[0].pk, jobs[-1].pk
    # (Beat's periodic jobs may take ids in between: only the no-ops are ours.)
    batch = Job.objects.filter(pk__gte=first, pk__lte=last, task="platform.noop")
    done = batch.filter(status=JobStatus.COMPLETED)
    # Polled 4 times a second: a COUNT over the batch costs the database more than an LLEN.
    wait(lambda: done.count() >= N, 600, "the queue", interval=0.25)
    queue_rate = N / (time.perf_counter() - started)
    # Lost or doubled? Every job completed, and each claimed once (a handler runs once a claim).
    time.sleep(1)  # a late duplicate delivery would show as a second attempt
    twice = batch.exclude(attempts=1).count()
    workers = batch.values("worker_id").distinct().count()
    check = f"{done.count()} of {N} completed, {twice} claimed more than once, {workers} workers"
    return celery_rate, queue_rate, check


def urgent_latencies(*, waiting: int = 0) -> list[float]:
    """Urgent jobs one at a time: created (in the producer) to started (the worker's claim),
    both stamped by the same clock. With `waiting`, that many no-op jobs are enqueued first
    and are worked meanwhile (the sampling takes a fraction of the time they need)."""
    from penguinmails.models import Job
    from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many

    if waiting:
        enqueue_many([JobSpec("platform.noop") for _ in range(waiting)])
        time.sleep(3)  # the migrator fills the broker
    latencies = []
    for _ in range(LATENCY_SAMPLES):
        job = enqueue("platform.noop", {}, priority=10)
        row = Job.objects.filter(pk=job.pk)
        wait(lambda row=row: row.filter(started_at__isnull=False).exists(), 30, "urgent job")
        started_at = row.values_list("started_at", flat=True).get()
        latencies.append((started_at - job.created_at).total_seconds() * 1000)
        time.sleep(0.02)
    if waiting:
        left = Job.objects.filter(status__in=["queued", "enqueued"]).count()
        print(f"  ({left} jobs still waiting after the urgent samples)")
    return sorted(latencies)


def reset(client: Any) -> None:
    """Between the phases: no message, no waiting job, no live worker left over."""
    from django.db import connection

    client.flushall()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs")


def percentiles(latencies: list[float]) -> str:
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (goal p99 < 25 ms)"


def report(
    celery1: float,
    queue1: float,
    idle: list[float],
    busy: list[float],
    celery2: float,
    queue2: float,
    check: str,
) -> None:
    print(f"machine load: {open('/proc/loadavg').read().split()[:3]}")
    print(f"no-op throughput, {N} tasks, 1 worker node -c {CONCURRENCY}:")
    print(f"  plain Celery .delay():  {celery1:8.0f} jobs/s")
    print(f"  durable job queue:      {queue1:8.0f} jobs/s")
    print(f"  ratio (queue / Celery): {queue1 / celery1:8.2f}  (goal >= 0.80)")
    print(f"urgent enqueue-to-start latency, {LATENCY_SAMPLES} jobs on an idle system:")
    print(f"  {percentiles(idle)}")
    if busy:
        print(f"the same with {WAITING} jobs waiting:")
        print(f"  {percentiles(busy)}")
    print(f"no-op throughput, {N} tasks, 2 worker nodes (w1, w2) -c {CONCURRENCY} each:")
    print(f"  plain Celery .delay():  {celery2:8.0f} jobs/s  ({celery2 / celery1:.2f} x one node)")
    print(f"  durable job queue:      {queue2:8.0f} jobs/s  ({queue2 / queue1:.2f} x one node)")
    print(f"  ratio (queue / Celery): {queue2 / celery2:8.2f}")
    print(f"  {check}")


if __name__ == "__main__":
    main()
