"""The ramp (docs/warmup.md, "The ramp"): pure functions of a plan and a date, no database.

- A mailbox's warm-up volume on day N of its plan (day 1 = `started_on`): `start_volume`, then
  `daily_increase` more a day, capped at `target`; Saturdays and Sundays `weekend_percent` of
  that; `maintenance_volume` once the ramp reached its target or the plan is in maintenance;
  while the mailbox's campaigns run, no more than `maintenance_volume`; 0 when paused or off.
- Its campaign allowance by warm-up age: a few a day on day 1, growing with the ramp to the full
  daily limit when the ramp reaches its target (`campaign_cap`; the arithmetic is the capacity
  module's `age_cap`).
- An IP's daily volume (warm-up and campaigns together) from its first use: `IP_START` on day 1,
  `IP_INCREASE` more a day, up to `IP_TARGET` (`ip_volume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from deliverability.services.allowance import age_cap
from warmup.models import WarmupStatus

SATURDAY = 5
# An IP's ramp, warm-up and campaign sends together (docs/warmup.md, "Per IP").
IP_START = 50
IP_INCREASE = 50
IP_TARGET = 5000


class PlanLike(Protocol):
    """What the ramp reads of a plan (a WarmupPlan or anything shaped like one)."""

    status: str
    start_volume: int
    daily_increase: int
    target: int
    weekend_percent: int
    maintenance_volume: int
    started_on: date


def day_number(plan: PlanLike, day: date) -> int:
    """Day N of the plan's ramp on `day` (day 1 is its start; 0 before it)."""
    return max(0, (day - plan.started_on).days + 1)


def ramp_volume(plan: PlanLike, day: date) -> int:
    """The weekday ramp on `day`: start, +increase a day, capped at target (0 before the start)."""
    n = day_number(plan, day)
    if n == 0:
        return 0
    return min(plan.target, plan.start_volume + (n - 1) * plan.daily_increase)


def at_target(plan: PlanLike, day: date) -> bool:
    return plan.status == WarmupStatus.MAINTENANCE or ramp_volume(plan, day) >= plan.target


def weekend(day: date, volume: int, percent: int) -> int:
    """`volume` on a Saturday or Sunday: `percent` of it, at least 1 when it is not 0."""
    if day.weekday() < SATURDAY or volume == 0:
        return volume
    return max(1, volume * percent // 100)


def daily_volume(plan: PlanLike, day: date, *, campaigns_running: bool = False) -> int:
    """How many warm-up messages the mailbox sends on `day`."""
    if plan.status not in (WarmupStatus.WARMING, WarmupStatus.MAINTENANCE):
        return 0
    if day_number(plan, day) == 0:
        return 0
    if at_target(plan, day):
        volume = plan.maintenance_volume
    else:
        volume = ramp_volume(plan, day)
        if campaigns_running:
            volume = min(volume, plan.maintenance_volume)
    return weekend(day, volume, plan.weekend_percent)


def campaign_cap(plan: PlanLike, day: date, daily_limit: int) -> int | None:
    """Campaign sends the mailbox may make on `day` by its warm-up age: the share of its daily
    limit the ramp has reached (ramp / target), at least the day's ramp; None (no cap) once at
    target. Paused or off plans do not hold back campaigns."""
    if plan.status != WarmupStatus.WARMING or at_target(plan, day) or plan.target == 0:
        return None
    return age_cap(ramp_volume(plan, day), plan.target, daily_limit)


def ip_volume(first_used: date, day: date) -> int:
    """An IP's daily volume (warm-up and campaigns) on `day`, from its first use."""
    n = max(1, (day - first_used).days + 1)
    return min(IP_TARGET, IP_START + (n - 1) * IP_INCREASE)


@dataclass(frozen=True)
class DayOfPlan:
    """One day of a plan, as the tests and `warmup status` show it."""

    day: date
    number: int
    volume: int
    campaign_cap: int | None


def simulate(plan: PlanLike, first: date, days: int, *, daily_limit: int) -> list[DayOfPlan]:
    """The plan's days from `first`, `days` of them."""
    out = []
    for offset in range(days):
        day = date.fromordinal(first.toordinal() + offset)
        out.append(
            DayOfPlan(
                day,
                day_number(plan, day),
                daily_volume(plan, day),
                campaign_cap(plan, day, daily_limit),
            )
        )
    return out


__all__ = [
    "DayOfPlan",
    "PlanLike",
    "at_target",
    "campaign_cap",
    "daily_volume",
    "day_number",
    "ip_volume",
    "ramp_volume",
    "simulate",
]
