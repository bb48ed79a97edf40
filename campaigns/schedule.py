"""Sending-window arithmetic: pure functions, no database.

A window is days of week plus local start/end times in an IANA timezone. Times are compared in
local wall-clock time (zoneinfo), so a 09:00–17:00 window stays 09:00–17:00 local across a
daylight-saving change; UTC offsets are never added by hand. A start time that does not exist on
a spring-forward day (02:30 in Berlin) resolves with fold=0, i.e. to the first instant after the
gap at that wall-clock distance (03:30 CEST).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Window:
    """Days of week (0 = Monday) and local times; `start` < `end` (no windows over midnight)."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError("A window needs days of week between 0 (Monday) and 6 (Sunday).")
        if self.start >= self.end:
            raise ValueError("A window's start must be before its end.")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("Pass an aware datetime (UTC).")
    return moment.astimezone(UTC)


def is_within_window(now_utc: datetime, window: Window, tz: str) -> bool:
    """Whether `now_utc` falls inside the window in `tz`'s local time."""
    local = _utc(now_utc).astimezone(ZoneInfo(tz))
    return local.weekday() in window.days and window.start <= local.time() < window.end


def next_window_start(now_utc: datetime, window: Window, tz: str) -> datetime:
    """`now_utc` itself when inside the window, otherwise the UTC instant the next window opens."""
    now = _utc(now_utc)
    if is_within_window(now, window, tz):
        return now
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        opens = datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC)
        if opens > now:
            return opens
    raise AssertionError("unreachable: a non-empty set of weekdays recurs within 8 days")
