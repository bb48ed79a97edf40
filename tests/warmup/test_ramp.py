"""The ramp over 30 simulated days, weekends included (warmup.ramp: pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from warmup import ramp

MONDAY = date(2026, 1, 5)


@dataclass
class Plan:
    status: str = "warming"
    start_volume: int = 2
    daily_increase: int = 2
    target: int = 40
    weekend_percent: int = 50
    maintenance_volume: int = 5
    started_on: date = MONDAY


def test_thirty_days_ramp_up_by_two_halve_on_weekends_and_hold_at_maintenance() -> None:
    days = ramp.simulate(Plan(), MONDAY, 30, daily_limit=40)
    volumes = [d.volume for d in days]
    assert [d.number for d in days] == list(range(1, 31))
    # Week 1: 2, 4, 6, 8, 10 on weekdays; Saturday and Sunday at 50 % of 12 and 14.
    assert volumes[:7] == [2, 4, 6, 8, 10, 6, 7]
    assert volumes[7:12] == [16, 18, 20, 22, 24]
    assert volumes[12:14] == [13, 14]  # 26 and 28, halved
    assert volumes[14:19] == [30, 32, 34, 36, 38]
    # Day 20 (a Saturday) reaches the target 40: from then on the maintenance level (5 a day,
    # 2 on weekend days).
    assert days[19].day.weekday() == 5
    assert volumes[19:21] == [2, 2]
    assert volumes[21:26] == [5] * 5
    assert all(v <= 40 for v in volumes)
    weekends = [d for d in days if d.day.weekday() >= 5]
    assert len(weekends) == 8
    for d in weekends:
        weekday_volume = min(40, 2 + (d.number - 1) * 2)
        expected = 5 if weekday_volume >= 40 else weekday_volume
        assert d.volume == max(1, expected * 50 // 100)


def test_the_campaign_allowance_grows_with_age_to_the_full_limit() -> None:
    days = ramp.simulate(Plan(), MONDAY, 30, daily_limit=100)
    caps = [d.campaign_cap for d in days]
    assert caps[0] == 5  # day 1: 2 of 40 ramp -> 5 % of 100
    assert caps[5] == 30  # day 6: 12 of 40 -> 30
    growing = [c for c in caps if c is not None]
    assert growing == sorted(growing) and len(set(growing)) == len(growing)
    assert caps[19:] == [None] * 11  # at target: no warm-up cap, the mailbox's own limit


def test_paused_off_and_not_yet_started_plans_send_nothing() -> None:
    assert ramp.daily_volume(Plan(status="paused"), MONDAY) == 0
    assert ramp.daily_volume(Plan(status="off"), MONDAY) == 0
    assert ramp.daily_volume(Plan(), MONDAY - timedelta(days=1)) == 0
    assert ramp.campaign_cap(Plan(status="paused"), MONDAY, 50) is None


def test_campaigns_running_hold_warm_up_at_the_maintenance_level() -> None:
    day10 = MONDAY + timedelta(days=9)  # a Wednesday, ramp 20
    assert ramp.daily_volume(Plan(), day10) == 20
    assert ramp.daily_volume(Plan(), day10, campaigns_running=True) == 5
    assert ramp.daily_volume(Plan(), MONDAY, campaigns_running=True) == 2  # below it already


def test_an_ip_ramps_from_its_first_use() -> None:
    first = MONDAY
    assert ramp.ip_volume(first, first) == ramp.IP_START
    assert ramp.ip_volume(first, first + timedelta(days=3)) == ramp.IP_START + 3 * ramp.IP_INCREASE
    assert ramp.ip_volume(first, first + timedelta(days=1000)) == ramp.IP_TARGET
