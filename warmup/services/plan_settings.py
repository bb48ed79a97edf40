"""A mailbox's warm-up as the tenant sees and changes it (docs/warmup.md, "Faces"): the page's
and the API's reads (`summary`, `placement_series`) and the one write (`update_warmup`: plan
fields and opt-in). Access: the Warm-up area (read to see, write to change) on top of the
mailbox's own (Mailboxes read). Call these in the tenant's schema."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from deliverability.models import Mailbox
from deliverability.services.mailboxes import access_mailbox
from penguinmails.errors import ValidationFailed
from tenants.models import User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit
from warmup import ramp
from warmup.models import (
    Placement,
    WarmupMessage,
    WarmupMessageKind,
    WarmupMessageStatus,
    WarmupPlan,
    WarmupStatus,
)
from warmup.services import pool

# The plan fields a tenant may change, and each one's allowed range.
LIMITS: Mapping[str, tuple[int, int]] = {
    "start_volume": (1, 200),
    "daily_increase": (0, 100),
    "target": (1, 500),
    "reply_rate": (0, 100),
    "weekend_percent": (0, 100),
    "maintenance_volume": (0, 200),
}
FIELDS = (*LIMITS, "timezone")


def access_warmup(principal: Principal, mailbox_id: int | str, *, write: bool = False) -> Mailbox:
    """The principal's tenant's mailbox, when it may read (or change) warm-up: NotFound for
    another tenant's ids, PermissionDenied without the Warm-up area."""
    require(principal, Area.WARMUP, Level.WRITE if write else Level.READ)
    return access_mailbox(principal, mailbox_id)


@dataclass(frozen=True)
class Summary:
    """What the page and the API show of a mailbox's warm-up today (UTC day)."""

    plan: WarmupPlan | None
    day_number: int | None  # day N of the ramp (None: not in the pool)
    volume_today: int  # the ramp's volume today
    sent_today: int  # warm-up messages (and replies) sent today
    scheduled_today: int  # still to go today
    inbox_30d: int
    spam_30d: int

    @property
    def enabled(self) -> bool:
        return self.plan is not None and self.plan.status != WarmupStatus.OFF

    @property
    def spam_share_30d(self) -> float | None:
        placed = self.inbox_30d + self.spam_30d
        return round(self.spam_30d / placed, 4) if placed else None


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def summary(mailbox: Mailbox, *, today: date | None = None) -> Summary:
    today = today or timezone.now().astimezone(UTC).date()
    plan = pool.plan_of(mailbox)
    start, end = _day_bounds(today)
    rows = WarmupMessage.objects.filter(mailbox=mailbox)
    counts = rows.aggregate(
        sent=Count("id", filter=Q(status=WarmupMessageStatus.SENT, sent_at__gte=start,
                                   sent_at__lt=end)),
        scheduled=Count("id", filter=Q(status=WarmupMessageStatus.SCHEDULED,
                                        scheduled_at__gte=start, scheduled_at__lt=end)),
        inbox=Count("id", filter=Q(placement=Placement.INBOX,
                                    placed_at__gte=start - timedelta(days=29))),
        spam=Count("id", filter=Q(placement=Placement.SPAM,
                                   placed_at__gte=start - timedelta(days=29))),
    )  # fmt: skip
    running = plan is not None and plan.status in pool.RUNNING
    return Summary(
        plan=plan,
        day_number=ramp.day_number(plan, today) if plan is not None else None,
        volume_today=ramp.daily_volume(plan, today) if plan is not None and running else 0,
        sent_today=counts["sent"],
        scheduled_today=counts["scheduled"],
        inbox_30d=counts["inbox"],
        spam_30d=counts["spam"],
    )


@dataclass(frozen=True)
class DayPlacement:
    day: date
    inbox: int
    spam: int


def placement_series(mailbox: Mailbox, *, days: int = 30) -> list[DayPlacement]:
    """Inbox and spam placements of the mailbox's warm-up mail per UTC day, the last `days`
    days, oldest first, every day present (zeros included)."""
    today = timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    rows = (
        WarmupMessage.objects.filter(
            mailbox=mailbox,
            kind__in=[WarmupMessageKind.MESSAGE, WarmupMessageKind.REPLY],
            placed_at__gte=datetime.combine(first, time(0), tzinfo=UTC),
            placement__in=[Placement.INBOX, Placement.SPAM],
        )
        .annotate(day=TruncDate("placed_at", tzinfo=UTC))
        .values("day", "placement")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_day: dict[date, dict[str, int]] = {}
    for row in rows:
        by_day.setdefault(row["day"], {})[row["placement"]] = row["n"]
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        got = by_day.get(day, {})
        out.append(DayPlacement(day, got.get(Placement.INBOX, 0), got.get(Placement.SPAM, 0)))
    return out


# --- The write -----------------------------------------------------------------------------------
def _clean(data: Mapping[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """The plan fields and the opt-in asked for, or ValidationFailed with every field's error."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - {*FIELDS, "enabled"})
    for name in unknown:
        errors[name] = ["Unknown field."]
    fields: dict[str, Any] = {}
    for name, (low, high) in LIMITS.items():
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int | str):
            errors[name] = [f"A whole number from {low} to {high}."]
            continue
        try:
            number = int(value)
        except ValueError:
            errors[name] = [f"A whole number from {low} to {high}."]
            continue
        if not low <= number <= high:
            errors[name] = [f"A whole number from {low} to {high}."]
        else:
            fields[name] = number
    if "timezone" in data:
        fields["timezone"] = _timezone(data["timezone"], errors)
    enabled = data.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        if str(enabled).lower() in ("true", "on", "1"):
            enabled = True
        elif str(enabled).lower() in ("false", "off", "0"):
            enabled = False
        else:
            errors["enabled"] = ["true or false."]
    if errors:
        raise ValidationFailed("Invalid warm-up settings.", fields=errors)
    return fields, enabled


def _timezone(value: Any, errors: dict[str, list[str]]) -> str:
    name = str(value or "").strip()
    try:
        if name not in available_timezones():
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = ["An IANA time zone, e.g. Europe/Paris."]
    return name


def update_warmup(
    principal: Principal, mailbox: Mailbox, data: Mapping[str, Any]
) -> WarmupPlan | None:
    """Change the mailbox's plan fields and/or opt it in or out of the pool, atomically and
    audited. `enabled: true` joins the pool (a new plan, or an opted-out one back to warming),
    `false` leaves it (None when it never joined); plan fields are kept either way. Refused:
    ValidationFailed (400) with field errors; PermissionDenied without Warm-up write."""
    require(principal, Area.WARMUP, Level.WRITE)
    fields, enabled = _clean(data)
    actor: User | None = principal.user
    with transaction.atomic():
        plan = pool.plan_of(mailbox)
        if enabled is True and (plan is None or plan.status == WarmupStatus.OFF):
            plan = pool.opt_in(mailbox, actor=actor, **fields)
        elif plan is None and enabled is False:
            return None  # not in the pool, and asked to stay out: nothing to change
        elif plan is None:
            raise ValidationFailed(
                "This mailbox is not in the warm-up pool.",
                fields={"enabled": ["Set enabled to true to join the pool first."]},
            )
        plan = WarmupPlan.objects.select_for_update().get(pk=plan.pk)
        if fields:
            for name, value in fields.items():
                setattr(plan, name, value)
            if plan.start_volume > plan.target:
                # Raised inside the transaction: an opt-in just made is rolled back with it.
                raise ValidationFailed(
                    "Invalid warm-up settings.",
                    fields={"start_volume": [f"At most the target ({plan.target})."]},
                )
            plan.save(update_fields=[*fields, "updated_at"])
        if enabled is False and plan.status != WarmupStatus.OFF:
            plan = pool.opt_out(mailbox, actor=actor)
        audit(
            "warmup.settings_changed",
            tenant=principal.tenant,
            actor=actor,
            mailbox_id=mailbox.pk,
            address=mailbox.address,
            changed=sorted(fields),
            enabled=enabled,
        )
    return plan


__all__ = [
    "FIELDS",
    "Summary",
    "access_warmup",
    "placement_series",
    "summary",
    "update_warmup",
]
