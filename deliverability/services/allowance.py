"""How much may a mailbox send now: the one answer (docs/sending.md, "How much a mailbox may send").

A mailbox's room today is the smallest of

- its own daily limit, less what it sent today (its counter, per UTC day);
- while warm-up holds it (the warmup app registers a provider, `register_warmup_provider`,
  docs/warmup.md "Volume control"): its daily limit less the warm-up sends planned for today and
  not sent yet, and its campaign allowance by warm-up age and health (campaign sends today may
  not pass it); the room carries an explanation ("12 of 40 today: day 6 of warm-up");
- while a higher app lowers it (the reputation app registers a factor provider,
  `register_allowance_factor`, docs/reputation.md): a share of the campaign sends it would
  otherwise allow, with its own words ("reputation 62: allowance x0.6");
- the plan's daily sends (billing's `daily_send_limit`), shared by all the tenant's mailboxes,
  less what they all sent today.

Sends the caller has promised but not yet counted (messages queued or in flight, which only the
campaigns app knows) come in as `pending`, per mailbox; their sum counts against the plan too. A
campaign's daily cap is the campaigns app's own part (`campaigns.sending.pacing.campaign_room`):
what a campaign may send through a mailbox is min(the mailbox's room, the campaign's room).

`allowance_for` answers for a batch of mailboxes with one query (the mailboxes and the tenant's
sends today) plus billing's plan lookup, whatever the number of mailboxes. Call it in the
tenant's schema.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection
from django.utils import timezone

from billing.entitlements import daily_send_limit
from deliverability.models import MailboxStatus
from tenants.models import Tenant


@dataclass(frozen=True)
class MailboxRoom:
    """One mailbox's part of the answer."""

    mailbox_id: int
    daily_limit: int  # its own limit, or its warm-up allowance when that is smaller
    sent: int  # counted today (UTC day)
    pending: int  # promised by the caller, not counted yet
    active: bool
    full_limit: int = 0  # its own daily limit (daily_limit before warm-up); 0: the same
    note: str = ""  # why it is held ("day 6 of warm-up; reputation 62: allowance x0.6") or ""

    @property
    def left(self) -> int:
        """What its daily limit leaves today, whatever its status."""
        return max(0, self.daily_limit - self.sent - self.pending)

    @property
    def explanation(self) -> str:
        """What the dashboard and the API show: "12 of 40 today: day 6 of warm-up"."""
        text = f"{self.left} of {self.full_limit or self.daily_limit} today"
        return f"{text}: {self.note}" if self.note else text


@dataclass(frozen=True)
class Allowance:
    """The room today of a set of one tenant's mailboxes, and the plan's room they share."""

    mailboxes: Mapping[int, MailboxRoom]
    plan_limit: int
    plan_sent: int
    plan_pending: int = 0

    @property
    def plan_left(self) -> int:
        return max(0, self.plan_limit - self.plan_sent - self.plan_pending)

    def left(self, mailbox_id: int) -> int:
        """The mailbox's own room (its limit, its warm-up), the plan aside; 0 when unknown."""
        room = self.mailboxes.get(mailbox_id)
        return room.left if room is not None else 0

    def room(self, mailbox_id: int) -> int:
        """How much this mailbox may send now: 0 unless active, else min(its own, the plan's)."""
        room = self.mailboxes.get(mailbox_id)
        if room is None or not room.active:
            return 0
        return min(room.left, self.plan_left)

    @property
    def total(self) -> int:
        """How much these mailboxes may send now, together."""
        own = sum(r.left for r in self.mailboxes.values() if r.active)
        return min(own, self.plan_left)


def age_cap(ramp: int, target: int, daily_limit: int) -> int:
    """Campaign sends a warming mailbox may make today: the share of its daily limit its ramp
    has reached (ramp / target), at least the ramp itself, at most the limit."""
    if target <= 0:
        return daily_limit
    return min(daily_limit, max(ramp, daily_limit * ramp // target))


@dataclass(frozen=True)
class WarmupHold:
    """What warm-up says of one mailbox today (the provider's answer)."""

    reserve: int  # warm-up sends planned for today and not sent yet: kept out of campaign room
    warmup_sent: int  # warm-up sends counted today (in the same counter as campaign sends)
    note: str  # "day 6 of warm-up"
    ramp: int | None = None  # today's ramp while warming (None: campaigns not held back)
    target: int = 0  # the ramp's target

    def limit(self, daily_limit: int) -> int:
        """The mailbox's limit for campaign sends, in the counter's terms (counter + pending may
        reach it): its own limit less the reserve, and no more campaign sends than its age
        allows."""
        own = daily_limit - self.reserve
        if self.ramp is not None:
            own = min(own, age_cap(self.ramp, self.target, daily_limit) + self.warmup_sent)
        return max(0, own)


WarmupProvider = Callable[[Collection[int], date], Mapping[int, WarmupHold]]
_warmup_providers: list[WarmupProvider] = []


def register_warmup_provider(provider: WarmupProvider) -> None:
    """The warmup app registers here (WarmupConfig.ready) what it holds of a set of mailboxes
    (deliverability imports no app above it). Registering the same function twice is a no-op."""
    if provider not in _warmup_providers:
        _warmup_providers.append(provider)


def warmup_allowance(
    mailbox_ids: Collection[int], *, today: date
) -> Mapping[int, WarmupHold] | None:
    """What warm-up holds of these mailboxes today (only those it holds), or None when no
    provider is registered."""
    if not _warmup_providers or not mailbox_ids:
        return None
    held: dict[int, WarmupHold] = {}
    for provider in _warmup_providers:
        held.update(provider(mailbox_ids, today))
    return held


@dataclass(frozen=True)
class CapacityFactor:
    """A higher app's cut of a mailbox's campaign allowance today (the reputation monitor's):
    campaign sends may be `share` (0-1) of what they otherwise could; `note` says why."""

    share: float
    note: str

    def limit(self, limit: int, warmup_sent: int) -> int:
        """`limit` (in the counter's terms) with its campaign part cut to `share`."""
        campaigns = max(0, limit - warmup_sent)
        return warmup_sent + int(campaigns * max(0.0, min(1.0, self.share)))


FactorProvider = Callable[[Collection[int], date], Mapping[int, CapacityFactor]]
_factor_providers: list[FactorProvider] = []


def register_allowance_factor(provider: FactorProvider) -> None:
    """A higher app registers what it cuts of a set of mailboxes' allowance (AppConfig.ready).
    Registering the same function twice is a no-op."""
    if provider not in _factor_providers:
        _factor_providers.append(provider)


def allowance_factors(mailbox_ids: Collection[int], *, today: date) -> dict[int, CapacityFactor]:
    """Each mailbox's smallest registered factor (only those cut)."""
    found: dict[int, CapacityFactor] = {}
    if not mailbox_ids:
        return found
    for provider in _factor_providers:
        for mailbox_id, factor in provider(mailbox_ids, today).items():
            if mailbox_id not in found or factor.share < found[mailbox_id].share:
                found[mailbox_id] = factor
    return found


def _room(
    mailbox_id: int,
    row: tuple[int, str, int],
    hold: WarmupHold | None,
    factor: CapacityFactor | None,
    pending: int,
) -> MailboxRoom:
    own, status, sent = row
    limit = min(own, hold.limit(own)) if hold else own
    notes = [hold.note] if hold and hold.note else []
    if factor is not None:
        limit = factor.limit(limit, hold.warmup_sent if hold else 0)
        notes.append(factor.note)
    return MailboxRoom(
        mailbox_id, limit, sent, pending, status == MailboxStatus.ACTIVE,
        full_limit=own, note="; ".join(notes),
    )  # fmt: skip


# What all the tenant's mailboxes sent on a day: the plan's count (`sent_today`, `plan_sent`).
_SENT_TODAY = (
    "SELECT COALESCE(sum(sent_today), 0) AS total FROM deliverability_mailbox WHERE sent_on = %s"
)


def today_of(now: datetime | None = None) -> date:
    """The day the counters count in: the UTC day of `now` (default: now)."""
    return (now or timezone.now()).astimezone(UTC).date()


def sent_today(*, now: datetime | None = None) -> int:
    """What all the tenant's mailboxes sent today (the plan's `plan_sent`), one query, without
    the plan lookup: the billing page's "sent today". Call it in the tenant's schema."""
    with connection.cursor() as cursor:
        cursor.execute(_SENT_TODAY, [today_of(now)])
        return int(cursor.fetchone()[0])


def allowance_for(
    tenant: Tenant,
    mailbox_ids: Collection[int],
    *,
    now: datetime | None = None,
    pending: Mapping[int, int] | None = None,
) -> Allowance:
    """The room today of `mailbox_ids` (the tenant's; unknown ids are left out) and of the plan.
    `pending` maps a mailbox id (0 for none) to sends promised but not counted yet."""
    today = today_of(now)
    pending = pending or {}
    ids = sorted(set(mailbox_ids))
    with connection.cursor() as cursor:
        # One statement for any number of mailboxes; the LEFT JOIN keeps the tenant's total
        # (the same count as `sent_today`) when no mailbox is asked about.
        cursor.execute(
            """
            SELECT t.total, m.id, m.daily_limit, m.status,
                   CASE WHEN m.sent_on = %s THEN m.sent_today ELSE 0 END
            FROM (SELECT COALESCE(sum(sent_today), 0) AS total FROM deliverability_mailbox
                   WHERE sent_on = %s) AS t
            LEFT JOIN deliverability_mailbox m ON m.id = ANY(%s)
            ORDER BY m.id
            """,
            [today, today, ids],
        )
        rows = cursor.fetchall()
    warm = warmup_allowance(ids, today=today) or {}
    cuts = allowance_factors(ids, today=today)
    rooms: dict[int, MailboxRoom] = {}
    for _, mailbox_id, limit, status, sent in rows:
        if mailbox_id is None:
            continue
        rooms[mailbox_id] = _room(
            mailbox_id, (int(limit), status, int(sent)), warm.get(mailbox_id),
            cuts.get(mailbox_id), int(pending.get(mailbox_id, 0)),
        )  # fmt: skip
    return Allowance(
        rooms,
        plan_limit=daily_send_limit(tenant),
        plan_sent=int(rows[0][0]),
        plan_pending=sum(pending.values()),
    )


__all__ = [
    "Allowance",
    "CapacityFactor",
    "allowance_factors",
    "register_allowance_factor",
    "MailboxRoom",
    "WarmupHold",
    "age_cap",
    "register_warmup_provider",
    "allowance_for",
    "sent_today",
    "today_of",
    "warmup_allowance",
]
