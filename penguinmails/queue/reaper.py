"""The reaper: jobs whose lease ran out go back to queued.

An enqueued job's lease ends when its message was lost (Redis flushed or restarted without
persistence) or never sent. A running job's lease ends when its worker stopped heartbeating
(killed, machine lost); that run counts as an attempt, so a job that kills its process every
time ends dead instead of looping forever and blocking others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from penguinmails.models import Job, JobStatus
from penguinmails.queue.states import transition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reaped:
    requeued: int
    dead: int


def reap_expired() -> Reaped:
    now = timezone.now()
    expired = Job.objects.filter(lease_expires_at__lt=now)
    lost_messages = transition(
        expired,
        to=JobStatus.QUEUED,
        from_=[JobStatus.ENQUEUED],
        lease_expires_at=None,
    )
    # attempts was counted when the dead run claimed the job.
    died = transition(
        expired.filter(attempts__lt=F("max_attempts")),
        to=JobStatus.QUEUED,
        from_=[JobStatus.RUNNING],
        lease_expires_at=None,
        worker_id="",
        last_error="worker lost while running (lease expired)",
    )
    exhausted = transition(
        expired.filter(attempts__gte=F("max_attempts")),
        to=JobStatus.DEAD,
        from_=[JobStatus.RUNNING],
        lease_expires_at=None,
        finished_at=now,
        last_error="worker lost while running (lease expired) on its last attempt",
    )
    if lost_messages or died or exhausted:
        log.warning(
            "reaper: %s lost messages re-queued, %s dead runs re-queued, %s jobs dead",
            lost_messages,
            died,
            exhausted,
        )
    return Reaped(requeued=lost_messages + died, dead=exhausted)
