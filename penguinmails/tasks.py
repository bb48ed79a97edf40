"""Celery tasks. Thin: they take ids and call the queue's services (see docs/queue.md)."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from celery import Task, shared_task

from penguinmails import heartbeat
from penguinmails.queue import batch, live, migrator, reaper, runner
from penguinmails.queue.producer import enqueue
from penguinmails.queue.publisher import RUN_JOB, RUN_JOBS


@shared_task(bind=True, name=RUN_JOB, ignore_result=True)
def run_job(self: Task, job_id: int) -> str:
    """The one generic task: every job is delivered as its id."""
    worker_id = f"{self.request.hostname or 'local'}:{os.getpid()}"
    return runner.run(job_id, worker_id=worker_id).value


@shared_task(bind=True, name=RUN_JOBS, ignore_result=True)
def run_jobs(self: Task, job_ids: list[int]) -> dict[str, int]:
    """Several jobs in one message (the migrator's batches); returns the count of each outcome."""
    worker_id = f"{self.request.hostname or 'local'}:{os.getpid()}"
    queue = (self.request.delivery_info or {}).get("routing_key")
    outcomes = batch.run_batch([int(i) for i in job_ids], worker_id=worker_id, delivered_from=queue)
    return dict(Counter(o.value for o in outcomes.values()))


@shared_task(name="penguinmails.migrate_jobs", ignore_result=True)
def migrate_jobs() -> int:
    return migrator.migrate_ready()


@shared_task(name="penguinmails.reap_jobs", ignore_result=True)
def reap_jobs() -> int:
    reaped = reaper.reap_expired()
    return reaped.requeued + reaped.dead


@shared_task(name="penguinmails.enqueue_job", ignore_result=True)
def enqueue_job(task: str, payload: dict[str, Any] | None = None) -> int:
    """Periodic jobs: beat enqueues them as jobs, keyed so a slow one is never doubled."""
    return enqueue(task, payload or {}, idempotency_key=f"periodic:{task}").pk


@shared_task(name="penguinmails.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> float:
    """Beat's heartbeat for /health/queue (penguinmails.heartbeat)."""
    return heartbeat.beat(live.client())


@shared_task(name="penguinmails.noop", ignore_result=True)
def noop() -> None:
    """Plain Celery, no job row: bench/queue.py's baseline for broker and worker overhead."""
