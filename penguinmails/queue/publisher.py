"""Publishing job ids to Celery. Used by the migrator and the producer's urgent fast path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from penguinmails.celery import app
from penguinmails.queue.queues import queue_for
from penguinmails.queue.registry import UnknownHandler, get_handler

# Seconds between the soft time limit (a catchable error in the handler) and the hard one (the
# pool process is killed; the reaper then counts the attempt).
HARD_LIMIT_GRACE = 30
# The one generic task (penguinmails.tasks.run_job): every job is delivered as its id.
RUN_JOB = "penguinmails.run_job"
# Several jobs in one message (penguinmails.queue.batch), published by the migrator.
RUN_JOBS = "penguinmails.run_jobs"


@dataclass(frozen=True)
class Publishable:
    id: int
    priority: int
    task: str


def publish(jobs: Iterable[Publishable], *, per_message: int = 1) -> int:
    """Send the jobs' ids on one broker connection: `penguinmails.run_job` for a lone job,
    `penguinmails.run_jobs` for up to `per_message` consecutive jobs of the same queue (the
    order is kept). Returns how many jobs were sent.

    The tasks are named, not imported: penguinmails.tasks imports the migrator and the producer,
    which publish through here."""
    sent = 0
    with app.producer_or_acquire() as producer:
        for queue, group in _groups(jobs, max(per_message, 1)):
            timeouts = [_timeout(job) for job in group]
            if len(group) == 1:
                timeout = timeouts[0]
                app.send_task(
                    RUN_JOB,
                    (group[0].id,),
                    queue=queue,
                    producer=producer,
                    soft_time_limit=timeout,
                    time_limit=timeout + HARD_LIMIT_GRACE if timeout else None,
                    ignore_result=True,
                )
            else:
                # Each job gets its own soft limit in the worker (queue.timelimit); the hard
                # limit covers them all.
                total = sum(t or 0 for t in timeouts)
                app.send_task(
                    RUN_JOBS,
                    ([job.id for job in group],),
                    queue=queue,
                    producer=producer,
                    time_limit=total + HARD_LIMIT_GRACE if all(timeouts) else None,
                    ignore_result=True,
                )
            sent += len(group)
    return sent


def _timeout(job: Publishable) -> int | None:
    try:
        return get_handler(job.task).timeout
    except UnknownHandler:
        return None  # the worker marks it dead with the reason


def _groups(jobs: Iterable[Publishable], size: int) -> Iterator[tuple[str, list[Publishable]]]:
    """Consecutive jobs of the same queue, at most `size` at a time."""
    queue, group = "", list[Publishable]()
    for job in jobs:
        job_queue = queue_for(job.priority).value
        if group and (job_queue != queue or len(group) >= size):
            yield queue, group
            group = []
        queue = job_queue
        group.append(job)
    if group:
        yield queue, group
