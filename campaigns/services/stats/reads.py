"""The read side: campaign and tenant figures from the rollups (a few hundred rows per campaign),
and a campaign's progress from its status counters (a few rows), never from messages or events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db import connection
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CountKind,
    EnrollmentStatus,
    MessageStatus,
    StepVariant,
)
from campaigns.services.stats import counters
from campaigns.services.stats.figures import (
    CampaignRow,
    CampaignStats,
    Day,
    Figures,
    Overview,
    Progress,
    StepStats,
    VariantStats,
)
from campaigns.services.stats.rollups import COUNTERS
from penguinmails.errors import ValidationFailed
from tenants.db import TenantConnection
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require

MAX_DAYS = 366


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


def progress(principal: Principal, campaign: Campaign) -> Progress:
    """Messages of the campaign by status and its enrollments by status, as they stand now: one
    query on the status counters (`counters`), whatever the campaign's size."""
    _read(principal)
    found = counters.read(campaign.pk)
    messages = dict.fromkeys(MessageStatus.values, 0)
    messages.update(found[CountKind.MESSAGE])
    enrollments = dict.fromkeys(EnrollmentStatus.values, 0)
    enrollments.update(found[CountKind.ENROLLMENT])
    return Progress(messages=messages, enrollments=enrollments)
