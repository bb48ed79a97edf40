"""Warm-up's part of "how much may a mailbox send" (docs/warmup.md, "Volume control"): the
provider registered with deliverability's capacity module (WarmupConfig.ready()), which composes
it with the mailbox's own limit and the plan's. For each mailbox warm-up holds (plan warming or
in maintenance), one query answers:

- the reserve: warm-up messages scheduled for today (UTC day, the counter's) and not sent yet;
- warm-up sends counted today (so campaign sends today = counter - these);
- while warming: today's ramp, lowered by health (the spam share of the last 7 days' placed
  warm-up mail), from which the capacity module's `age_cap` gives the campaign allowance;
- the note shown to the tenant ("day 6 of warm-up").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from deliverability.services.allowance import WarmupHold
from warmup import ramp
from warmup.models import Placement, WarmupMessage, WarmupMessageStatus, WarmupPlan, WarmupStatus

HEALTH_DAYS = 7


def _count(**filters: object) -> Coalesce:
    rows = (
        WarmupMessage.objects.filter(mailbox_id=OuterRef("mailbox_id"), **filters)
        .order_by()
        .values("mailbox_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def health(inbox: int, spam: int) -> float:
    """The share of placed warm-up mail that reached the inbox (1.0 when none was placed)."""
    placed = inbox + spam
    return 1.0 if placed == 0 else inbox / placed


def note_for(plan: WarmupPlan, day: date, spam_share: float) -> str:
    if plan.status == WarmupStatus.MAINTENANCE or ramp.at_target(plan, day):
        text = "warm-up at maintenance level"
    else:
        text = f"day {ramp.day_number(plan, day)} of warm-up"
    if spam_share > 0:
        text += f", {round(spam_share * 100)} % of warm-up mail in spam"
    return text


def holds(mailbox_ids: Collection[int], today: date) -> Mapping[int, WarmupHold]:
    """The provider: what warm-up holds of these mailboxes today (one query)."""
    start = datetime.combine(today, time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    since = start - timedelta(days=HEALTH_DAYS - 1)
    plans = WarmupPlan.objects.filter(
        mailbox_id__in=list(mailbox_ids),
        status__in=[WarmupStatus.WARMING, WarmupStatus.MAINTENANCE],
    ).annotate(
        reserve=_count(
            status=WarmupMessageStatus.SCHEDULED,
            scheduled_at__gte=start,
            scheduled_at__lt=end,
        ),
        sent=_count(status=WarmupMessageStatus.SENT, sent_at__gte=start, sent_at__lt=end),
        inbox=_count(placement=Placement.INBOX, placed_at__gte=since),
        spam=_count(placement=Placement.SPAM, placed_at__gte=since),
    )
    out: dict[int, WarmupHold] = {}
    for plan in plans:
        good = health(plan.inbox, plan.spam)
        volume = ramp.ramp_volume(plan, today)
        held = plan.status == WarmupStatus.WARMING and not ramp.at_target(plan, today)
        out[plan.mailbox_id] = WarmupHold(
            reserve=plan.reserve,
            warmup_sent=plan.sent,
            note=note_for(plan, today, 1 - good),
            ramp=int(volume * good) if held else None,
            target=plan.target,
        )
    return out


__all__ = ["holds", "health", "note_for"]
