"""Publishing job ids to Celery. Used by the migrator and the producer's urgent fast path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from penguinmails.celery import app
from penguinmails.queue.queues import queue_for
from penguinmails.queue.registry import UnknownHandler, get_handler

# Seconds between the soft time limit (a catchable error in the handler) and the hard one (the
# pool process is killed; the reaper then counts the attempt).
HARD_LIMIT_GRACE = 30
# The one generic task (penguinmails.tasks.run_job): every job is delivered as its id.
RUN_JOB = "penguinmails.run_job"


@dataclass(frozen=True)
class Publishable:
    id: int
    priority: int
    task: str


def publish(jobs: Iterable[Publishable]) -> int:
    """Send one `penguinmails.run_job` message per job, on one broker connection.

    The task is named, not imported: penguinmails.tasks imports the migrator and the producer,
    which publish through here."""
    sent = 0
    with app.producer_or_acquire() as producer:
        for job in jobs:
            try:
                timeout: int | None = get_handler(job.task).timeout
            except UnknownHandler:
                timeout = None  # the worker marks it dead with the reason
            app.send_task(
                RUN_JOB,
                (job.id,),
                queue=queue_for(job.priority).value,
                producer=producer,
                soft_time_limit=timeout,
                time_limit=timeout + HARD_LIMIT_GRACE if timeout else None,
                ignore_result=True,
            )
            sent += 1
    return sent
