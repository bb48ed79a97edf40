"""Handing queued messages to send jobs (docs/sending.md, "Scheduling", dispatch), and the
sweep of messages a dead send job left in `sending`. Used by the scheduler's run and by a send
job that hands its not-yet-due messages to a follow-up job."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.utils import timezone

from campaigns.models import MessageStatus
from campaigns.sending.recovery import Recovered, recover_lost_sends
from campaigns.sending.sql import fetch, update_from_values
from penguinmails import indexes
from penguinmails.models import LIVE_STATUSES
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from tenants.models import Tenant

SCHEDULE_TASK = "campaigns.schedule"
SEND_TASK = "campaigns.send"
SEND_PRIORITY = 60
# One send job carries up to SEND_BATCH messages of one campaign whose slots fall within
# BATCH_SPAN of the first (the job sends what is due and re-enqueues the rest for later).
SEND_BATCH = 500
BATCH_SPAN = timedelta(seconds=30)


def schedule_key(tenant_id: int) -> str:
    return f"{SCHEDULE_TASK}:{tenant_id}"


def request_schedule(tenant: Tenant, *, campaign_id: int | None = None) -> None:
    """Ask for a scheduler run for this tenant now (start, resume, a resent message); joins the
    caller's transaction and is deduplicated with any live one. With `campaign_id`, that running
    campaign is made due now too: the run visits only due campaigns, and one that just sent may
    not be due again for minutes."""
    if campaign_id is not None:
        indexes.set_next_run(tenant.pk, [campaign_id], timezone.now())
    enqueue(SCHEDULE_TASK, {}, tenant=tenant, idempotency_key=schedule_key(tenant.pk))


def sweep_lost_sends(campaign_id: int) -> Recovered:
    """Messages left in `sending` by a send job that is no longer live (it died and ran out of
    attempts): those whose DATA never started go back to the queue and are dispatched by this
    run; the others become unknown, never resent (docs/sending.md)."""
    rows = fetch(
        """
        SELECT m.id FROM campaigns_message m
        WHERE m.campaign_id = %s AND m.status = %s
          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = m.job_id AND j.status = ANY(%s))
        """,
        [campaign_id, MessageStatus.SENDING.value, list(LIVE_STATUSES)],
    )
    return recover_lost_sends(
        [r[0] for r in rows], job_id=None, why="its send job ended without a result"
    )


def orphans(campaign_id: int, until: datetime) -> list[tuple[int, datetime]]:
    """Queued messages due before `until` that no live job holds: new ones, ones a check held,
    ones a pause left behind. Ordered by slot."""
    rows = fetch(
        """
        SELECT m.id, m.scheduled_for FROM campaigns_message m
        WHERE m.campaign_id = %s AND m.status = %s AND m.scheduled_for <= %s
          AND (m.job_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM jobs j WHERE j.id = m.job_id AND j.status = ANY(%s)))
        ORDER BY m.scheduled_for, m.id
        """,
        [campaign_id, MessageStatus.QUEUED.value, until, list(LIVE_STATUSES)],
    )
    return [(r[0], r[1]) for r in rows]


def dispatch(tenant: Tenant, campaign_id: int, messages: Iterable[tuple[int, datetime]]) -> int:
    """Group (message id, slot) pairs, in slot order, into send jobs of at most SEND_BATCH
    messages spanning at most BATCH_SPAN; record each job on its messages. Returns the jobs."""
    batches: list[list[tuple[int, datetime]]] = []
    for item in messages:
        if (
            not batches
            or len(batches[-1]) >= SEND_BATCH
            or item[1] - batches[-1][0][1] > BATCH_SPAN
        ):
            batches.append([])
        batches[-1].append(item)
    if not batches:
        return 0
    jobs = enqueue_many(
        JobSpec(
            SEND_TASK,
            {"campaign_id": campaign_id, "message_ids": [m for m, _ in batch]},
            tenant,
            priority=SEND_PRIORITY,
            run_at=batch[0][1],
        )
        for batch in batches
    )
    rows = [(m, job.pk) for batch, job in zip(batches, jobs, strict=True) for m, _ in batch]
    update_from_values(
        "campaigns_message", rows, [("id", "bigint"), ("job", "bigint")], "job_id = v.job"
    )
    return len(jobs)
