"""The write side of the daily rollups: `bump` adds a batch of increments in one statement."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from django.db import connection

from deliverability.services.sender_stats import COUNTERS as SENDER_COUNTERS
from deliverability.services.sender_stats import SenderBump, add
from penguinmails import batching

COUNTERS = (
    "sent",
    "delivered",
    "failed",
    "bounced",
    "opened",
    "clicked",
    "replied",
    "unsubscribed",
    "complained",
    "machine_opened",
    "machine_clicked",
)


class _Sent(Protocol):
    campaign_id: int
    step_id: int
    variant_id: int
    mailbox_id: int | None


class Bump(NamedTuple):
    """One increment: `counter` of (campaign, step, variant) on `day`, by `by`."""

    campaign_id: int
    step_id: int
    variant_id: int
    day: dt.date
    counter: str
    by: int = 1
    # The sending mailbox: its sent/bounced/complained/replied also go to deliverability's
    # sender rollups (mailbox, domain, IP) in the same transaction (docs/inbound.md, "Rates").
    mailbox_id: int | None = None

    @classmethod
    def of(cls, message: _Sent, day: dt.date, counter: str) -> Bump:
        """The increment of one campaigns.Message (its campaign, step, variant and mailbox)."""
        return cls(
            message.campaign_id,
            message.step_id,
            message.variant_id,
            day,
            counter,
            1,
            message.mailbox_id,
        )


# Called with every batch that counted a bounce or a complaint, after it is written (automatic
# protection; registered by CampaignsConfig.ready, so this module imports no service).
AFTER_BUMP: list[Callable[[list[Bump]], None]] = []


def bump(increments: Iterable[Bump]) -> int:
    """Add every increment, in the caller's transaction and the current tenant schema. Returns
    the number of rollup rows touched: 0 when a batch is open (penguinmails.batching), which
    writes them all at its end, in one statement."""
    increments = list(increments)
    for inc in increments:
        if inc.counter not in COUNTERS:
            raise ValueError(f"unknown counter {inc.counter!r}")
    if batching.defer(_write, increments):
        return 0
    return _write(increments)


def _write(increments: list[Bump]) -> int:
    rows: dict[tuple[int, int, int, dt.date], Counter[str]] = {}
    for inc in increments:
        if inc.by:
            key = (inc.campaign_id, inc.step_id, inc.variant_id, inc.day)
            rows.setdefault(key, Counter())[inc.counter] += inc.by
    if not rows:
        return 0
    columns = ", ".join(COUNTERS)
    values: list[int | str | dt.date] = []
    placeholders = []
    for (campaign_id, step_id, variant_id, day), counts in sorted(rows.items()):
        placeholders.append("(" + ", ".join(["%s"] * (4 + len(COUNTERS))) + ")")
        values.extend([campaign_id, step_id, variant_id, day])
        values.extend(counts.get(name, 0) for name in COUNTERS)
    updates = ", ".join(f"{name} = s.{name} + EXCLUDED.{name}" for name in COUNTERS)
    sql = (
        f"INSERT INTO campaigns_campaigndailystat AS s "  # noqa: S608 - names are constants
        f"(campaign_id, step_id, variant_id, day, {columns}) VALUES {', '.join(placeholders)} "
        f"ON CONFLICT (campaign_id, step_id, variant_id, day) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    add(
        SenderBump(i.mailbox_id, i.day, i.counter, i.by)
        for i in increments
        if i.mailbox_id and i.counter in SENDER_COUNTERS
    )
    if any(i.counter in ("bounced", "complained") and i.by for i in increments):
        for hook in AFTER_BUMP:
            hook(increments)
    return len(rows)
