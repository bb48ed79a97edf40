"""Cost against revenue (docs/billing.md, "Margins"): each tenant's monthly infrastructure cost
(infrastructure's cost records, through billing.costs) against its revenue from paid invoices.

Revenue of a month: the paid invoices of monthly subscriptions paid in it, plus a twelfth of
each paid yearly invoice for the twelve months from the month it was paid (a yearly plan pays
for a year; counting it in one month would show eleven months of loss). Refunded invoices count
nothing; disputed ones count until the dispute is decided (they stay revenue if it is won).

Staff are alerted (penguinmails.alerts) when a tenant costs more than it pays
("billing.cost_over_revenue") or its margin is under BILLING_MARGIN_FLOOR percent
("billing.margin_low"), judged on the last complete month: mid-month, a monthly invoice paid
on the 20th is not in yet while the servers already cost.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from billing.costs import allocation_cost, monthly_costs
from billing.models import BillingInterval, Payment, PaymentStatus, Plan
from penguinmails.alerts import Severity, raise_alert, resolve_alert
from penguinmails.alerts.models import OPEN_STATES, Alert
from penguinmails.errors import ValidationFailed
from tenants.models import Tenant

MARGINS_TASK = "billing.margins_check"
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
CENTS = Decimal("0.01")


def month_bounds(
    month: str | None = None, *, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of "YYYY-MM" in UTC (default: the current month)."""
    if month:
        found = MONTH_RE.match(month)
        if not found:
            raise ValidationFailed("Month must be YYYY-MM.", fields={"month": ["Use YYYY-MM."]})
        year, number = int(found.group(1)), int(found.group(2))
        if not (1 <= year < 9999 and 1 <= number <= 12):  # 9999-12 has no end month
            raise ValidationFailed(
                "Month must be YYYY-MM between 0001-01 and 9998-12.",
                fields={"month": ["Use a real month, YYYY-MM."]},
            )
    else:
        today = (now or timezone.now()).astimezone(dt.UTC)
        year, number = today.year, today.month
    start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def previous_month(now: dt.datetime | None = None) -> str:
    start, _ = month_bounds(now=now)
    last = start - dt.timedelta(days=1)
    return f"{last:%Y-%m}"


def _months_between(earlier: dt.datetime, later: dt.datetime) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def revenue_by_tenant(start: dt.datetime, end: dt.datetime) -> dict[int, Decimal]:
    """Each tenant's revenue for the month [start, end) from its paid invoices."""
    earliest = start - dt.timedelta(days=366)
    rows = (
        Payment.objects.filter(
            status__in=(PaymentStatus.PAID, PaymentStatus.DISPUTED),
            paid_at__gte=earliest,
            paid_at__lt=end,
        )
        .values_list("tenant_id", "amount", "paid_at", "subscription__interval")
        .order_by()
    )
    revenue: dict[int, Decimal] = {}
    for tenant_id, amount, paid_at, interval in rows:
        if paid_at is None:
            continue
        if interval == BillingInterval.YEAR:
            if 0 <= _months_between(paid_at, start) < 12:
                revenue[tenant_id] = revenue.get(tenant_id, Decimal(0)) + amount / 12
        elif paid_at >= start:
            revenue[tenant_id] = revenue.get(tenant_id, Decimal(0)) + amount
    return {k: v.quantize(CENTS) for k, v in revenue.items()}


@dataclass
class MarginRow:
    tenant: str
    name: str
    revenue: Decimal
    cost: Decimal
    costs: dict[str, Decimal] = field(default_factory=dict)

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        """Margin over revenue, in percent; None without revenue."""
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.1"))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(margin=self.margin, margin_percent=self.margin_percent)
        return _plain(data)


@dataclass
class MarginReport:
    month: str
    rows: list[MarginRow]

    @property
    def revenue(self) -> Decimal:
        return sum((r.revenue for r in self.rows), Decimal(0))

    @property
    def cost(self) -> Decimal:
        return sum((r.cost for r in self.rows), Decimal(0))

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.1"))

    def as_dict(self) -> dict[str, Any]:
        return _plain(
            {
                "month": self.month,
                "tenants": [r.as_dict() for r in self.rows],
                "totals": {
                    "revenue": self.revenue,
                    "cost": self.cost,
                    "margin": self.margin,
                    "margin_percent": self.margin_percent,
                },
            }
        )


def _plain(value: Any) -> Any:
    """Decimals as strings with two places, for JSON."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def margins(month: str | None = None) -> MarginReport:
    """Every tenant with revenue or cost in the month, worst margin first."""
    start, end = month_bounds(month)
    revenue = revenue_by_tenant(start, end)
    costs = monthly_costs(start, end)
    ids = set(revenue) | {t for t, lines in costs.items() if sum(lines.values())}
    tenants = Tenant.objects.filter(pk__in=ids).only("slug", "name")
    rows = []
    for tenant in tenants:
        lines = {k: (Decimal(v) / 100).quantize(CENTS) for k, v in costs.get(tenant.pk, {}).items()}
        rows.append(
            MarginRow(
                tenant=tenant.slug,
                name=tenant.name,
                revenue=revenue.get(tenant.pk, Decimal("0.00")),
                cost=sum(lines.values(), Decimal("0.00")),
                costs=lines,
            )
        )
    rows.sort(key=lambda r: (r.margin, r.tenant))
    return MarginReport(f"{start:%Y-%m}", rows)


@dataclass(frozen=True)
class Concern:
    """A tenant staff should look at: "billing.cost_over_revenue" or "billing.margin_low"."""

    rule: str
    row: MarginRow

    @property
    def summary(self) -> str:
        r = self.row
        if self.rule == COST_OVER_REVENUE:
            return f"{r.tenant} cost ${r.cost} against ${r.revenue} of revenue"
        return f"{r.tenant}'s margin is {r.margin_percent}% (floor {floor()}%)"


COST_OVER_REVENUE = "billing.cost_over_revenue"
MARGIN_LOW = "billing.margin_low"


def floor() -> int:
    return int(settings.BILLING_MARGIN_FLOOR)


def concerns(report: MarginReport) -> list[Concern]:
    found = []
    for row in report.rows:
        if row.cost > row.revenue:
            found.append(Concern(COST_OVER_REVENUE, row))
        elif row.margin_percent is not None and row.margin_percent < floor():
            found.append(Concern(MARGIN_LOW, row))
    return found


@dataclass(frozen=True)
class PlanCheck:
    plan: str
    price: Decimal
    cost: Decimal
    lines: dict[str, Decimal]

    @property
    def ok(self) -> bool:
        return self.cost <= self.price


def check_plans() -> list[PlanCheck]:
    """Each plan's monthly price against what its allocation costs at today's unit costs."""
    checks = []
    for plan in Plan.objects.order_by("sort_order", "pk"):
        lines = {k: Decimal(v) / 100 for k, v in allocation_cost(plan.parsed_limits).items()}
        checks.append(
            PlanCheck(plan.slug, plan.monthly_price, sum(lines.values(), Decimal("0.00")), lines)
        )
    return checks


def alert_margins(month: str | None = None) -> list[Concern]:
    """Raise a staff alert per tenant of concern in `month` (default: the last complete one) and
    resolve those no longer of concern; staff-only (no tenant banner: the tenant's margin is ours
    to worry about). Daily job `billing.margins_check`; `billing margins --alert`."""
    report = margins(month or previous_month())
    found = concerns(report)
    for concern in found:
        row = concern.row
        raise_alert(
            concern.rule,
            f"tenant:{row.tenant}",
            summary=f"{report.month}: {concern.summary}",
            severity=Severity.CRITICAL if concern.rule == COST_OVER_REVENUE else Severity.WARNING,
            detail={"month": report.month, **row.as_dict()},
        )
    wanted = {(c.rule, f"tenant:{c.row.tenant}") for c in found}
    for rule, subject in (
        Alert.objects.filter(rule__in=(COST_OVER_REVENUE, MARGIN_LOW), state__in=OPEN_STATES)
        .values_list("rule", "subject")
        .distinct()
    ):
        if (rule, subject) not in wanted:
            resolve_alert(rule, subject, note=f"{report.month}: margin back over the floor")
    return found
