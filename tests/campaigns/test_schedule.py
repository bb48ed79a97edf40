"""Sending windows across daylight-saving changes (Europe/Berlin, America/New_York)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.schedule import Window, is_within_window, next_window_start

EVERY_DAY = Window(days=frozenset(range(7)), start=time(9), end=time(17))
WEEKDAYS = Window(days=frozenset(range(5)), start=time(9), end=time(17))


def _local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


@pytest.mark.parametrize(
    ("tz", "day_before", "hours_between"),
    [
        # Europe/Berlin: 2026-03-29 (CET→CEST) and 2026-10-25 (CEST→CET).
        ("Europe/Berlin", datetime(2026, 3, 28, 0, tzinfo=UTC), 23),
        ("Europe/Berlin", datetime(2026, 10, 24, 0, tzinfo=UTC), 25),
        # America/New_York: 2026-03-08 (EST→EDT) and 2026-11-01 (EDT→EST).
        ("America/New_York", datetime(2026, 3, 7, 6, tzinfo=UTC), 23),
        ("America/New_York", datetime(2026, 10, 31, 6, tzinfo=UTC), 25),
    ],
)
def test_it_opens_at_nine_local_on_both_sides_of_a_dst_change(
    tz: str, day_before: datetime, hours_between: int
) -> None:
    first = next_window_start(day_before, EVERY_DAY, tz)
    second = next_window_start(first + timedelta(hours=12), EVERY_DAY, tz)
    assert _local(first, tz).time() == time(9) and _local(second, tz).time() == time(9)
    assert _local(second, tz).date() - _local(first, tz).date() == timedelta(days=1)
    # The same local hour is 23 or 25 hours later in UTC across the change.
    assert second - first == timedelta(hours=hours_between)
    assert is_within_window(second + timedelta(hours=7, minutes=59), EVERY_DAY, tz)
    assert not is_within_window(second + timedelta(hours=8), EVERY_DAY, tz)


def test_it_computes_berlin_utc_instants_exactly() -> None:
    # The Saturday before the spring change opens 08:00 UTC (CET); the Sunday of it 07:00 UTC.
    assert next_window_start(datetime(2026, 3, 28, 0, tzinfo=UTC), EVERY_DAY, "Europe/Berlin") == (
        datetime(2026, 3, 28, 8, tzinfo=UTC)
    )
    assert next_window_start(datetime(2026, 3, 29, 0, tzinfo=UTC), EVERY_DAY, "Europe/Berlin") == (
        datetime(2026, 3, 29, 7, tzinfo=UTC)
    )
    # 16:30 UTC on the change day is 18:30 CEST: closed, though it would be 17:30 in CET.
    assert not is_within_window(
        datetime(2026, 3, 29, 15, 30, tzinfo=UTC), EVERY_DAY, "Europe/Berlin"
    )
    assert is_within_window(datetime(2026, 3, 29, 14, 59, tzinfo=UTC), EVERY_DAY, "Europe/Berlin")
    # Autumn: 16:30 UTC on 2026-10-25 is 17:30 CET, closed; 15:59 UTC is 16:59, open.
    assert not is_within_window(
        datetime(2026, 10, 25, 16, 30, tzinfo=UTC), EVERY_DAY, "Europe/Berlin"
    )
    assert is_within_window(datetime(2026, 10, 25, 15, 59, tzinfo=UTC), EVERY_DAY, "Europe/Berlin")


def test_it_skips_closed_days_and_returns_now_inside_the_window() -> None:
    friday_evening = datetime(2026, 3, 6, 23, tzinfo=UTC)  # 18:00 EST, Friday
    monday = next_window_start(friday_evening, WEEKDAYS, "America/New_York")
    assert monday == datetime(2026, 3, 9, 13, tzinfo=UTC)  # 09:00 EDT, after the change
    inside = datetime(2026, 3, 9, 15, tzinfo=UTC)
    assert next_window_start(inside, WEEKDAYS, "America/New_York") == inside


def test_it_refuses_empty_or_reversed_windows_and_naive_times() -> None:
    with pytest.raises(ValueError):
        Window(days=frozenset(), start=time(9), end=time(17))
    with pytest.raises(ValueError):
        Window(days=frozenset({1}), start=time(17), end=time(9))
    with pytest.raises(ValueError):
        is_within_window(datetime(2026, 1, 1), EVERY_DAY, "UTC")
