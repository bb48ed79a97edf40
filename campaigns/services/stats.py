"""Campaign statistics: the write side of the daily rollups (docs/analytics.md).

Counters live in CampaignDailyStat, one row per (campaign, step, variant, UTC day). Writers (the
send pipeline when it records results, the event writer when it applies opens, clicks and
unsubscribes) call `bump` with the increments of a whole batch: one INSERT ... ON CONFLICT DO
UPDATE adds them, so concurrent writers never lose a count and stats never scan messages.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, astuple, dataclass
from typing import Any, NamedTuple, cast

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignLead,
    EnrollmentStatus,
    Message,
    MessageStatus,
    StepVariant,
)
from penguinmails.errors import ValidationFailed
from tenants.db import TenantConnection
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require

COUNTERS = (
    "sent",
    "delivered",
    "failed",
    "bounced",
    "opened",
    "clicked",
    "replied",
    "unsubscribed",
    "machine_opened",
    "machine_clicked",
)


class Bump(NamedTuple):
    """One increment: `counter` of (campaign, step, variant) on `day`, by `by`."""

    campaign_id: int
    step_id: int
    variant_id: int
    day: dt.date
    counter: str
    by: int = 1


def bump(increments: Iterable[Bump]) -> int:
    """Add every increment, in the caller's transaction and the current tenant schema. Returns
    the number of rollup rows touched."""
    rows: dict[tuple[int, int, int, dt.date], Counter[str]] = {}
    for inc in increments:
        if inc.counter not in COUNTERS:
            raise ValueError(f"unknown counter {inc.counter!r}")
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
    return len(rows)


# --- Read side -----------------------------------------------------------------------------------
# Everything below reads the rollups (a few hundred rows per campaign), never messages or events,
# except `progress` (index range counts of in-flight messages) and `rebuild` (a repair tool).

# rate name -> (numerator, counters summed as the denominator). `sent` counts what a receiving
# server accepted (as the send pipeline bumps it) and `bounced` what it refused, at SMTP time or
# later, so sent + bounced is what reached a server; engagement is measured against delivered.
RATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "delivery_rate": ("delivered", ("sent", "bounced")),
    "open_rate": ("opened", ("delivered",)),
    "click_rate": ("clicked", ("delivered",)),
    "reply_rate": ("replied", ("delivered",)),
    "bounce_rate": ("bounced", ("sent", "bounced")),
    "unsubscribe_rate": ("unsubscribed", ("delivered",)),
}
MAX_DAYS = 366


@dataclass(frozen=True)
class Figures:
    """The counters of some rollup rows added up, and the rates derived from them."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    machine_opened: int = 0
    machine_clicked: int = 0

    @classmethod
    def of(cls, values: Sequence[Any]) -> Figures:
        """From the COUNTERS columns in order (NULL sums count as 0)."""
        return cls(*(int(v or 0) for v in values))

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def rate(self, name: str) -> float | None:
        """A fraction in 0..1; None without a base."""
        numerator, denominator = RATES[name]
        base = sum(getattr(self, counter) for counter in denominator)
        return round(getattr(self, numerator) / base, 4) if base else None

    @property
    def rates(self) -> dict[str, float | None]:
        return {name: self.rate(name) for name in RATES}

    @property
    def percents(self) -> dict[str, str]:
        """Rates as display text with one decimal ("12.5%"), "" without a base."""
        return {k: "" if v is None else f"{v * 100:.1f}%" for k, v in self.rates.items()}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rates": self.rates}


@dataclass(frozen=True)
class VariantStats:
    variant_id: int
    template_id: int
    template_name: str
    weight: int
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant_id": self.variant_id,
            "template_id": self.template_id,
            "template_name": self.template_name,
            "weight": self.weight,
            **self.figures.as_dict(),
        }


@dataclass(frozen=True)
class StepStats:
    step_id: int
    order: int
    figures: Figures
    variants: list[VariantStats]

    def as_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "order": self.order,
            **self.figures.as_dict(),
            "variants": [v.as_dict() for v in self.variants],
        }


@dataclass(frozen=True)
class Day:
    day: dt.date
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), **asdict(self.figures)}


@dataclass(frozen=True)
class CampaignStats:
    """One campaign's numbers over `days` (None: all time), as shown on its page and by the API."""

    campaign_id: int
    name: str
    status: str
    days: int | None
    since: dt.date | None
    totals: Figures
    steps: list[StepStats]
    series: list[Day]

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "status": self.status,
            "days": self.days,
            "since": self.since.isoformat() if self.since else None,
            "totals": self.totals.as_dict(),
            "steps": [s.as_dict() for s in self.steps],
            "series": [d.as_dict() for d in self.series],
        }


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: int
    name: str
    status: str
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "status": self.status,
            **self.figures.as_dict(),
        }


@dataclass(frozen=True)
class Overview:
    """Every campaign of the tenant side by side, the tenant's totals and its daily series."""

    days: int | None
    since: dt.date | None
    totals: Figures
    campaigns: list[CampaignRow]
    series: list[Day]

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "since": self.since.isoformat() if self.since else None,
            "totals": self.totals.as_dict(),
            "campaigns": [c.as_dict() for c in self.campaigns],
            "series": [d.as_dict() for d in self.series],
        }


@dataclass(frozen=True)
class Progress:
    """Where a campaign stands now: messages by status and enrollments by status."""

    messages: dict[str, int]
    enrollments: dict[str, int]

    @property
    def enrolled(self) -> int:
        return sum(self.enrollments.values())

    @property
    def done(self) -> int:
        return self.enrolled - self.enrollments.get(EnrollmentStatus.ACTIVE, 0)

    @property
    def percent(self) -> int:
        return self.done * 100 // self.enrolled if self.enrolled else 0

    @property
    def in_flight(self) -> int:
        return sum(self.messages.get(s, 0) for s in IN_FLIGHT)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "enrollments": self.enrollments,
            "enrolled": self.enrolled,
            "done": self.done,
            "percent": self.percent,
        }


def _since(days: int | None) -> dt.date | None:
    if days is None:
        return None
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(
            "Invalid input.", fields={"days": [f"Must be between 1 and {MAX_DAYS}."]}
        )
    return timezone.now().date() - dt.timedelta(days=days - 1)


def _sums() -> str:
    return ", ".join(f"SUM({name})" for name in COUNTERS)


def _series(rows: Iterable[Sequence[Any]], since: dt.date | None) -> list[Day]:
    """Day rows (day, *COUNTERS) as a gapless series from `since` (or the first day) to today."""
    by_day = {row[0]: Figures.of(row[1:]) for row in rows}
    if not by_day and since is None:
        return []
    start = since or min(by_day)
    end = max([timezone.now().date(), *by_day])
    return [
        Day(start + dt.timedelta(days=i), by_day.get(start + dt.timedelta(days=i), Figures()))
        for i in range((end - start).days + 1)
    ]


def _read(principal: Principal) -> None:
    require(principal, Area.CAMPAIGNS, Level.READ)
    schema = cast(TenantConnection, connection).schema_name
    if schema != principal.tenant.schema_name:
        raise RuntimeError(f"stats for {principal.tenant.slug} read in schema {schema!r}")


def campaign_stats(
    principal: Principal, campaign: Campaign, *, days: int | None = None
) -> CampaignStats:
    """Totals, per step and variant (with rates) and the daily series of one campaign, over the
    last `days` UTC days including today (None: all time). Three small queries on the rollups."""
    _read(principal)
    since = _since(days)
    where = "campaign_id = %s" + (" AND day >= %s" if since else "")
    params: list[Any] = [campaign.pk] + ([since] if since else [])
    table = "campaigns_campaigndailystat"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT step_id, variant_id, {_sums()} FROM {table} "  # noqa: S608 - constants
            f"WHERE {where} GROUP BY step_id, variant_id",
            params,
        )
        by_variant = {(row[0], row[1]): Figures.of(row[2:]) for row in cursor.fetchall()}
        cursor.execute(
            f"SELECT day, {_sums()} FROM {table} WHERE {where} GROUP BY day",  # noqa: S608
            params,
        )
        series = _series(cursor.fetchall(), since)
    steps: list[StepStats] = []
    seen: set[tuple[int, int]] = set()
    variants = StepVariant.objects.filter(step__campaign=campaign).select_related(
        "step", "template"
    )
    by_step: dict[int, list[VariantStats]] = {}
    orders: dict[int, int] = {}
    for v in variants.order_by("step__order", "id"):
        seen.add((v.step_id, v.pk))
        orders[v.step_id] = v.step.order
        by_step.setdefault(v.step_id, []).append(
            VariantStats(
                v.pk,
                v.template_id,
                v.template.name,
                v.weight,
                by_variant.get((v.step_id, v.pk), Figures()),
            )
        )
    # Rollups of variants removed since (a draft edited after a test send) still count in totals.
    for (step_id, variant_id), figures in by_variant.items():
        if (step_id, variant_id) not in seen:
            by_step.setdefault(step_id, []).append(
                VariantStats(variant_id, 0, "(removed)", 0, figures)
            )
            orders.setdefault(step_id, 0)
    for step_id, items in sorted(by_step.items(), key=lambda kv: (orders[kv[0]], kv[0])):
        total = sum((v.figures for v in items), Figures())
        steps.append(StepStats(step_id, orders[step_id], total, items))
    return CampaignStats(
        campaign_id=campaign.pk,
        name=campaign.name,
        status=campaign.status,
        days=days,
        since=since,
        totals=sum(by_variant.values(), Figures()),
        steps=steps,
        series=series,
    )


def overview(principal: Principal, *, days: int | None = None) -> Overview:
    """Every campaign's totals, the tenant's totals and its daily series (two rollup queries)."""
    _read(principal)
    since = _since(days)
    where = "WHERE day >= %s" if since else ""
    params: list[Any] = [since] if since else []
    table = "campaigns_campaigndailystat"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT campaign_id, {_sums()} FROM {table} {where} GROUP BY campaign_id",  # noqa: S608
            params,
        )
        by_campaign = {row[0]: Figures.of(row[1:]) for row in cursor.fetchall()}
        cursor.execute(f"SELECT day, {_sums()} FROM {table} {where} GROUP BY day", params)  # noqa: S608
        series = _series(cursor.fetchall(), since)
    rows = [
        CampaignRow(c.pk, c.name, c.status, by_campaign.get(c.pk, Figures()))
        for c in Campaign.objects.only("pk", "name", "status")
    ]
    return Overview(
        days=days,
        since=since,
        totals=sum(by_campaign.values(), Figures()),
        campaigns=rows,
        series=series,
    )


IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)


def progress(principal: Principal, campaign: Campaign) -> Progress:
    """Messages of the campaign by status and its enrollments by status, counted now."""
    _read(principal)
    messages = dict.fromkeys(MessageStatus.values, 0)
    for status, count in (
        Message.objects.filter(campaign=campaign)
        .order_by()
        .values_list("status")
        .annotate(n=Count("*"))
    ):
        messages[status] = count
    enrollments = dict.fromkeys(EnrollmentStatus.values, 0)
    for status, count in (
        CampaignLead.objects.filter(campaign=campaign)
        .order_by()
        .values_list("status")
        .annotate(n=Count("*"))
    ):
        enrollments[status] = count
    return Progress(messages=messages, enrollments=enrollments)


# --- Rebuild from messages and events (repair tool, and the benchmark's baseline) ----------------
# One scan of the campaign's messages unpivoted into (counter, when) facts, plus the first open
# and click per message and kind of actor from its events; each fact lands on its UTC day.
_FACTS_SQL = """
SELECT m.step_id, m.variant_id, f.counter, f.at
FROM campaigns_message m
CROSS JOIN LATERAL (VALUES
    ('sent', m.sent_at),
    ('delivered', m.sent_at),
    ('failed', CASE WHEN m.status = 'failed' THEN m.updated_at END),
    ('bounced', m.bounced_at),
    ('replied', m.replied_at),
    ('unsubscribed', m.unsubscribed_at)
) AS f(counter, at)
WHERE m.campaign_id = %(campaign)s AND f.at IS NOT NULL
UNION ALL
SELECT m.step_id, m.variant_id, e.counter, e.at
FROM (
    SELECT message_id,
           CASE WHEN kind = 'open' THEN 'opened' ELSE 'clicked' END
           || CASE WHEN is_machine THEN '_machine' ELSE '' END AS counter,
           MIN(at) AS at
    FROM campaigns_messageevent
    WHERE campaign_id = %(campaign)s AND kind IN ('open', 'click')
    GROUP BY message_id, kind, is_machine
) e
JOIN campaigns_message m ON m.id = e.message_id
"""
_FACT_NAMES = {name: name for name in COUNTERS} | {
    "machine_opened": "opened_machine",
    "machine_clicked": "clicked_machine",
}
RAW_SQL = (
    "SELECT step_id, variant_id, (at AT TIME ZONE 'UTC')::date AS day, "  # noqa: S608 - constants
    + ", ".join(f"COUNT(*) FILTER (WHERE counter = '{_FACT_NAMES[name]}')" for name in COUNTERS)
    + f" FROM ({_FACTS_SQL}) facts GROUP BY 1, 2, 3"
)


def raw_rollups(campaign_id: int) -> list[tuple[Any, ...]]:
    """The rollup rows (step_id, variant_id, day, *COUNTERS) computed from messages and events:
    what `bump` should have accumulated. Scans every message and event of the campaign."""
    with connection.cursor() as cursor:
        cursor.execute(RAW_SQL, {"campaign": campaign_id})
        return list(cursor.fetchall())


def rebuild(campaign: Campaign) -> int:
    """Replace a campaign's rollups with ones recomputed from its messages and events; returns
    the number of rows written. Holds a lock that makes `bump` wait (tenant-wide) meanwhile, so
    no increment lands between the recount and the replacement."""
    columns = ", ".join(COUNTERS)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Conflicts with the ROW EXCLUSIVE lock every INSERT takes: waits for running
            # writers to commit (their messages are then visible), blocks new ones until done.
            cursor.execute("LOCK TABLE campaigns_campaigndailystat IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(
                "DELETE FROM campaigns_campaigndailystat WHERE campaign_id = %s", [campaign.pk]
            )
            cursor.execute(
                f"INSERT INTO campaigns_campaigndailystat "  # noqa: S608 - constants
                f"(campaign_id, step_id, variant_id, day, {columns}) "
                f"SELECT %(campaign)s, raw.* FROM ({RAW_SQL}) raw",
                {"campaign": campaign.pk},
            )
            return cursor.rowcount
