"""Warm-up's receiving side, the database half (docs/warmup.md, "Receiving side").

- `report_placement`: the receiver (in its own tenant's schema) tells the sender where a
  warm-up message landed by enqueuing a low-priority job in the *sender's* tenant (the tag's
  pool member -> the public index -> its tenant). Only the Message-ID, the placement, the
  receiving pool member's id and the time cross over; nothing else of the receiving tenant.
- `record_placement`: that job, in the sender's schema: the WarmupMessage with that Message-ID,
  sent to that pool member, gets its placement and placed_at. The first sighting wins, except
  that spam beats inbox: a message rescued from junk is later seen again in the inbox, and the
  truth is that it landed in spam.
- `schedule_reply`: a reply in the same thread, at the receiving mailbox's plan reply_rate
  (decided by a hash of the Message-ID, so a re-run decides the same), written as a scheduled
  WarmupMessage(kind=reply) that warm-up's sender sends through the SMTP pool from the
  receiving mailbox (counted in its daily sends like any warm-up message). Once per answered
  message.
- `record_replied`: a reply that reached the original sender sets replied_at on what it sent.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from deliverability.models import Mailbox
from penguinmails.models import Job, WarmupPoolMember
from penguinmails.queue.producer import enqueue
from tenants.models import Tenant
from warmup import corpus_replies, tag
from warmup.models import (
    Placement,
    WarmupMessage,
    WarmupMessageKind,
    WarmupMessageStatus,
    WarmupPlan,
    WarmupStatus,
)

PLACEMENT_TASK = "warmup.placement"
RECEIVE_TASK = "warmup.receive"
CLEANUP_TASK = "warmup.cleanup"
CLEANUP_DUE_TASK = "warmup.cleanup_due"
PRIORITY = 200  # the low queue: warm-up bookkeeping waits behind campaign work
REPLY_DELAY_MINUTES = (3, 40)  # a person answers after a while, not at once
RUNNING = frozenset({WarmupStatus.WARMING, WarmupStatus.MAINTENANCE})


def _percent(message_id: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}:{message_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100


def is_important(message_id: str) -> bool:
    """Whether the receiver marks this message important (\\Flagged): WARMUP_IMPORTANT_PERCENT
    of them, the same answer on every run."""
    return _percent(message_id, "important") < settings.WARMUP_IMPORTANT_PERCENT


def answers(plan: WarmupPlan, message_id: str) -> bool:
    """Whether the plan's mailbox answers this message (its reply_rate percent of them)."""
    return _percent(message_id, "reply") < plan.reply_rate


def member_of(tenant_id: int, mailbox_id: int) -> WarmupPoolMember | None:
    """A mailbox's row in the pool's public index (read only here; written by indexes)."""
    return WarmupPoolMember.objects.filter(tenant_id=tenant_id, mailbox_id=mailbox_id).first()


def report_placement(
    sent: tag.WarmupTag, placement: Placement, *, by_member_id: int, at: datetime
) -> Job | None:
    """Enqueue, in the sending member's tenant, the job that records where `sent` landed.
    None when the sender is no longer in the pool. Idempotent while the job is live, and its
    effect is idempotent after."""
    sender = WarmupPoolMember.objects.filter(pk=sent.member_id).values("tenant_id").first()
    tenant = Tenant.objects.filter(pk=sender["tenant_id"]).first() if sender else None
    if tenant is None:
        return None
    payload = {
        "message_id": sent.message_id,
        "placement": str(placement),
        "by_member": by_member_id,
        "at": at.isoformat(),
    }
    key = f"warmup-placement:{tenant.pk}:{sent.message_id}:{placement}"
    return enqueue(PLACEMENT_TASK, payload, tenant=tenant, priority=PRIORITY, idempotency_key=key)


def record_placement(message_id: str, placement: str, *, by_member_id: int, at: datetime) -> bool:
    """In the sender's schema: where the message it sent to pool member `by_member_id` landed.
    True when the row changed."""
    if placement not in (Placement.INBOX, Placement.SPAM):
        raise ValueError(f"not a placement: {placement!r}")
    rows = WarmupMessage.objects.filter(message_id=message_id, to_member_id=by_member_id)
    if placement == Placement.SPAM:
        rows = rows.exclude(placement=Placement.SPAM)
    else:
        rows = rows.filter(placement=Placement.UNKNOWN)
    return rows.update(placement=placement, placed_at=at) > 0


def record_replied(mailbox: Mailbox, answered_message_id: str, *, at: datetime) -> bool:
    """The partner answered what `mailbox` sent: replied_at, once. True when the row changed."""
    rows = WarmupMessage.objects.filter(
        mailbox=mailbox, message_id=answered_message_id, replied_at__isnull=True
    )
    return rows.update(replied_at=at) > 0


def schedule_reply(
    mailbox: Mailbox,
    *,
    member_id: int,
    answered: tag.WarmupTag,
    subject: str,
    now: datetime,
) -> WarmupMessage | None:
    """A reply from `mailbox` (pool member `member_id`) to the warm-up message `answered`, in
    its thread, when the mailbox's plan runs and its reply rate picks this message; None
    otherwise, or when it was answered already. Sent by warm-up's sender when due."""
    partner = WarmupPoolMember.objects.filter(pk=answered.member_id).first()
    if partner is None:
        return None
    with transaction.atomic():
        # The plan's row is the lock: two sightings of one message (rescued from junk, then
        # seen in the inbox) never write two replies.
        plan = WarmupPlan.objects.select_for_update().filter(mailbox=mailbox).first()
        if plan is None or plan.status not in RUNNING or not answers(plan, answered.message_id):
            return None
        done = WarmupMessage.objects.filter(
            mailbox=mailbox, kind=WarmupMessageKind.REPLY, in_reply_to=answered.message_id
        )
        if done.exists():
            return None
        low, high = REPLY_DELAY_MINUTES
        delay = low + _percent(answered.message_id, "delay") * (high - low) // 100
        return WarmupMessage.objects.create(
            mailbox=mailbox,
            kind=WarmupMessageKind.REPLY,
            to_member_id=partner.pk,
            to_address=partner.address,
            message_id=tag.make_message_id(member_id, mailbox.address.rpartition("@")[2]),
            in_reply_to=answered.message_id,
            subject=corpus_replies.reply_subject(subject)[:300],
            body=corpus_replies.reply_body(
                answered.message_id,
                to_address=partner.address,
                from_address=mailbox.address,
                from_name=mailbox.display_name,
            ),
            status=WarmupMessageStatus.SCHEDULED,
            scheduled_at=now + timedelta(minutes=delay),
        )


__all__ = [
    "CLEANUP_DUE_TASK",
    "CLEANUP_TASK",
    "PLACEMENT_TASK",
    "PRIORITY",
    "RECEIVE_TASK",
    "answers",
    "is_important",
    "member_of",
    "record_placement",
    "record_replied",
    "report_placement",
    "schedule_reply",
]
