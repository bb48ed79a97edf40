"""Benchmark of the durable job queue against plain Celery (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/queue.py

Uses its own database (pm_bench_queue on DATABASE_URL's server, dropped afterwards) and its own
redis-server on a free loopback port, and starts its own worker processes (one node, -c 2) and
beat. Prints, side by side: throughput of N no-op jobs through the queue vs the same no-op task
sent with plain `.delay()`, and enqueue-to-start latency p50/p99 of urgent jobs on an idle system.
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

from bench._harness import (  # noqa: E402
    bench_database,
    celery_processes,
    private_redis,
    setup_django,
    wait,
)

N = int(os.environ.get("BENCH_JOBS", "10000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "200"))
CONCURRENCY = os.environ.get("BENCH_CONCURRENCY", "2")
DB_NAME = "pm_bench_queue"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-queue-"))
    try:
        with bench_database(DB_NAME), private_redis(tmp) as redis_url:
            setup_django()
            with celery_processes(tmp, CONCURRENCY):
                run(redis_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(redis_url: str) -> None:
    import redis

    from penguinmails.models import Job, JobStatus
    from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
    from penguinmails.tasks import noop

    client = redis.Redis.from_url(redis_url)
    warm = [enqueue("platform.noop", {}, priority=10) for _ in range(20)]
    wait(
        lambda: Job.objects.filter(pk__in=[j.pk for j in warm], status="completed").count() == 20,
        60,
        "warm-up",
    )

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
    done = Job.objects.filter(pk__gte=first, pk__lte=last, status=JobStatus.COMPLETED)
    # Polled 4 times a second: a COUNT over the batch costs the database more than an LLEN.
    wait(lambda: done.count() == N, 600, "the queue", interval=0.25)
    queue_rate = N / (time.perf_counter() - started)

    # Urgent jobs on an idle system, one at a time: created (in the producer) to started
    # (the worker's claim), both stamped by the same clock.
    latencies = []
    for _ in range(LATENCY_SAMPLES):
        job = enqueue("platform.noop", {}, priority=10)
        row = Job.objects.filter(pk=job.pk)
        wait(lambda row=row: row.filter(started_at__isnull=False).exists(), 30, "urgent job")
        started_at = row.values_list("started_at", flat=True).get()
        latencies.append((started_at - job.created_at).total_seconds() * 1000)
        time.sleep(0.02)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]

    print(f"no-op throughput, {N} tasks, 1 worker node -c {CONCURRENCY}:")
    print(f"  plain Celery .delay():  {celery_rate:8.0f} jobs/s")
    print(f"  durable job queue:      {queue_rate:8.0f} jobs/s")
    print(f"  ratio (queue / Celery): {queue_rate / celery_rate:8.2f}  (goal >= 0.50)")
    print(f"urgent enqueue-to-start latency, {LATENCY_SAMPLES} jobs on an idle system:")
    print(f"  p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (goal p99 < 100 ms)")


if __name__ == "__main__":
    main()
