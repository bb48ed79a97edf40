"""Pacing: how many messages one scheduler run may create for a campaign, and the mailbox slots
they go to (docs/sending.md, "Scheduling" and "How much a mailbox may send").

A mailbox's room and the plan's come from deliverability's allowance, the one answer to "how
much may this mailbox send now"; the campaign's daily cap is this app's part (`campaign_room`,
counted from local midnight in the campaign's timezone) and composes with it as
min(mailbox room, campaign room). The tenant's messages queued or in flight are sends the
allowance has not counted yet: they are passed to it as pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.models import Campaign, MessageStatus
from campaigns.sending.sql import fetch
from deliverability.models import MailboxStatus
from deliverability.services.allowance import Allowance, allowance_for
from tenants.models import Tenant

IN_FLIGHT = (MessageStatus.QUEUED.value, MessageStatus.SENDING.value)
MAX_PER_RUN = 20_000  # messages created per campaign per scheduler run


def local_midnight(campaign: Campaign, now: datetime) -> datetime:
    """Where the campaign's day starts: midnight in its timezone."""
    zone = ZoneInfo(campaign.timezone)
    return datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)


def cap_used_today(campaign: Campaign, *, now: datetime) -> int:
    """What counts against the daily cap: messages created since local midnight, skipped ones
    excepted (a skipped message never used a mailbox)."""
    ((used,),) = fetch(
        "SELECT count(*) FROM campaigns_message WHERE campaign_id = %s AND created_at >= %s "
        "AND status <> %s",
        [campaign.pk, local_midnight(campaign, now), MessageStatus.SKIPPED.value],
    )
    return int(used)


def campaign_room(campaign: Campaign, *, now: datetime) -> int:
    """How many more messages the campaign's daily cap allows today."""
    return max(0, campaign.daily_cap - cap_used_today(campaign, now=now))


def in_flight() -> dict[int, tuple[int, datetime | None]]:
    """Per mailbox id (0 for none), the tenant's messages queued or sending and the latest slot
    among them (one query)."""
    rows = fetch(
        "SELECT COALESCE(mailbox_id, 0), count(*), max(scheduled_for) FROM campaigns_message "
        "WHERE status = ANY(%s) GROUP BY 1",
        [list(IN_FLIGHT)],
    )
    return {int(mailbox_id): (int(n), last) for mailbox_id, n, last in rows}


def allowance_with_in_flight(
    tenant: Tenant, mailbox_ids: list[int], *, now: datetime
) -> tuple[Allowance, dict[int, datetime | None]]:
    """The allowance of `mailbox_ids` net of what is queued or in flight, and each mailbox's
    latest slot in flight."""
    flying = in_flight()
    pending = {mailbox_id: n for mailbox_id, (n, _) in flying.items()}
    allowance = allowance_for(tenant, mailbox_ids, now=now, pending=pending)
    return allowance, {mailbox_id: last for mailbox_id, (_, last) in flying.items()}


@dataclass
class MailboxSlot:
    """One of the campaign's mailboxes as a run fills it."""

    mailbox_id: int
    remaining: int
    cursor: datetime  # the earliest slot for its next message


@dataclass
class Capacity:
    """The caps of one run: the campaign's, the plan's and the mailboxes'."""

    campaign_left: int
    plan_left: int
    slots: list[MailboxSlot]

    @property
    def limit(self) -> int:
        mailboxes = sum(s.remaining for s in self.slots)
        return min(self.campaign_left, self.plan_left, mailboxes, MAX_PER_RUN)

    def exhausted(self) -> str:
        """The cap that leaves nothing to send (when `limit` is 0)."""
        if self.campaign_left <= 0:
            return "daily cap"
        return "plan limit" if self.plan_left <= 0 else "mailboxes"

    def reached(self, limit: int) -> str:
        """The cap a run that created `limit` messages (this capacity's limit when the run
        began) stopped at."""
        if limit == self.campaign_left:
            return "daily cap"
        if limit == self.plan_left:
            return "plan limit"
        return "run size" if limit == MAX_PER_RUN else "mailboxes"


def capacity(
    tenant: Tenant, campaign: Campaign, *, now: datetime, gap: Callable[[], timedelta]
) -> Capacity:
    """The caps of a run now, and a slot for each of the campaign's active mailboxes with room
    (its cursor: its last send or latest slot in flight plus a gap, not before now)."""
    mailboxes = fetch(
        """
        SELECT m.id, m.last_sent_at FROM deliverability_mailbox m
        JOIN campaigns_campaign_mailboxes cm ON cm.mailbox_id = m.id
        WHERE cm.campaign_id = %s AND m.status = %s
        ORDER BY m.id
        """,
        [campaign.pk, MailboxStatus.ACTIVE.value],
    )
    allowance, latest = allowance_with_in_flight(tenant, [m for m, _ in mailboxes], now=now)
    slots = []
    for mailbox_id, last_sent in mailboxes:
        remaining = allowance.left(mailbox_id)
        if remaining <= 0:
            continue
        known = [t for t in (last_sent, latest.get(mailbox_id)) if t is not None]
        cursor = max(now, max(known) + gap()) if known else now
        slots.append(MailboxSlot(mailbox_id, remaining, cursor))
    return Capacity(campaign_room(campaign, now=now), allowance.plan_left, slots)


__all__ = [
    "IN_FLIGHT",
    "MAX_PER_RUN",
    "Capacity",
    "MailboxSlot",
    "campaign_room",
    "cap_used_today",
    "capacity",
    "local_midnight",
]
