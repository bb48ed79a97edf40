"""Sending warm-up messages (docs/warmup.md, "Sending").

`enqueue_due` (public, a beat job every minute) enqueues one low-priority `warmup.send` job per
tenant of the pool (the public index: no loop over tenant schemas; none while one is live).
`send_due` (that job, in the tenant's schema) sends the tenant's due messages through the same
SMTP pool as campaigns (deliverability.smtp_pool), counts each in the mailbox's daily counter
(the one campaigns use, so campaign plus warm-up sends stay under the daily limit), and moves
each message through its states: sent, failed (refused, or deferred past WARMUP_GIVE_UP_HOURS),
canceled (its mailbox or plan stopped, its partner left the pool, or the daily limit is
reached). More due than one batch: the job enqueues itself again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from deliverability.models import Mailbox, MailboxStatus
from deliverability.services.mailboxes import record_send_success
from deliverability.smtp_pool import Delivery, Outcome, SmtpPool
from penguinmails import indexes, states
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from tenants.models import Tenant
from warmup import compose, conf
from warmup.models import WarmupMessage, WarmupMessageStatus, WarmupPlan
from warmup.services.pool import RUNNING

SEND_DUE_TASK = "warmup.send_due"
SEND_TASK = "warmup.send"


def send_key(tenant_id: int) -> str:
    return f"warmup.send:{tenant_id}"


def enqueue_due() -> int:
    """One send job per tenant of the pool; returns how many tenants."""
    tenants = list(Tenant.objects.filter(pk__in=indexes.pool_tenants()))
    with transaction.atomic():
        enqueue_many(
            JobSpec(SEND_TASK, {}, t, priority=conf.PRIORITY, idempotency_key=send_key(t.pk))
            for t in tenants
        )
    return len(tenants)


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    canceled: int = 0
    deferred: int = 0
    more: bool = False
    errors: list[str] = field(default_factory=list)


def _move(message: WarmupMessage, to: WarmupMessageStatus, **fields: Any) -> None:
    states.transition(message, to, reason=str(fields.get("error", "")), **fields)


def _why_not(message: WarmupMessage, plans: dict[int, WarmupPlan], partners: set[int]) -> str:
    mailbox = message.mailbox
    if mailbox.status != MailboxStatus.ACTIVE:
        return f"mailbox {mailbox.status}"
    plan = plans.get(mailbox.pk)
    if plan is None or plan.status not in RUNNING:
        return f"warm-up {plan.status if plan else 'off'}"
    if message.to_member_id not in partners:
        return "partner left the pool"
    return ""


def _settle(message: WarmupMessage, delivery: Delivery, now: datetime, report: SendReport) -> None:
    if delivery.outcome == Outcome.ACCEPTED:
        with transaction.atomic():
            _move(message, WarmupMessageStatus.SENT, sent_at=now)
            record_send_success(message.mailbox_id)
        report.sent += 1
    elif delivery.outcome == Outcome.DEFERRED and message.scheduled_at > now - timedelta(
        hours=conf.GIVE_UP_HOURS
    ):
        report.deferred += 1  # stays scheduled: the next run tries again
    else:
        _move(message, WarmupMessageStatus.FAILED, error=delivery.response[:500] or "failed")
        report.failed += 1
        report.errors.append(delivery.response[:200])


def _send(tenant: Tenant, due: Sequence[WarmupMessage], now: datetime, report: SendReport) -> None:
    ids = [m.mailbox_id for m in due]
    plans = {p.mailbox_id: p for p in WarmupPlan.objects.filter(mailbox_id__in=ids)}
    partners = set(indexes.pool_addresses({m.to_member_id for m in due}, active_only=True))
    sent = {m.mailbox_id: _sent_today(m.mailbox, now) for m in due}
    with SmtpPool(tenant=tenant, mailbox_ids=ids) as pool:
        for message in due:
            mailbox = message.mailbox
            reason = _why_not(message, plans, partners)
            if not reason and sent[mailbox.pk] >= mailbox.daily_limit:
                reason = "daily limit reached"
            if reason:
                _move(message, WarmupMessageStatus.CANCELED, error=reason)
                report.canceled += 1
                continue
            raw = compose.render(
                from_addr=mailbox.address, from_name=mailbox.display_name,
                to_addr=message.to_address, subject=message.subject, body=message.body,
                message_id=message.message_id, in_reply_to=message.in_reply_to,
            )  # fmt: skip
            delivery = pool.deliver(
                raw, mailbox=mailbox, from_addr=mailbox.address, to_addr=message.to_address
            )
            _settle(message, delivery, timezone.now(), report)
            if delivery.outcome == Outcome.ACCEPTED:
                sent[mailbox.pk] += 1


def _sent_today(mailbox: Mailbox, now: datetime) -> int:
    return mailbox.sent_today if mailbox.sent_on == now.date() else 0


def send_due(
    tenant: Tenant, *, now: datetime | None = None, batch: int | None = None
) -> SendReport:
    """Send the tenant's due warm-up messages (at most `batch`, default WARMUP_SEND_BATCH). In
    the tenant's schema."""
    now = now or timezone.now()
    batch = batch or conf.SEND_BATCH
    due = list(
        WarmupMessage.objects.filter(status=WarmupMessageStatus.SCHEDULED, scheduled_at__lte=now)
        .select_related("mailbox")
        .order_by("scheduled_at", "id")[: batch + 1]
    )
    report = SendReport(more=len(due) > batch)
    if due:
        _send(tenant, due[:batch], now, report)
    if report.more:
        enqueue(SEND_TASK, {}, tenant=tenant, priority=conf.PRIORITY)
    return report


__all__ = ["SEND_DUE_TASK", "SEND_TASK", "SendReport", "enqueue_due", "send_due"]
