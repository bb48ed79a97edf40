"""Which backups retention keeps: the newest of each of the last N days, weeks and months that
have one (grandfather-father-son; 7 daily, 4 weekly, 12 monthly by default)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import datetime


def _period_keys() -> list[Callable[[datetime], Hashable]]:
    return [
        lambda at: at.date(),
        lambda at: at.isocalendar()[:2],
        lambda at: (at.year, at.month),
    ]


def kept(
    backups: Iterable[tuple[int, datetime]], *, daily: int, weekly: int, monthly: int
) -> set[int]:
    """The ids to keep among (id, started_at) of one series (same kind and tenant)."""
    newest_first = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    keep: set[int] = set()
    for key, limit in zip(_period_keys(), (daily, weekly, monthly), strict=True):
        periods: set[Hashable] = set()
        for pk, at in newest_first:
            period = key(at)
            if period in periods:
                continue
            if len(periods) >= limit:
                break
            periods.add(period)
            keep.add(pk)
    if newest_first:
        keep.add(newest_first[0][0])  # the newest is never pruned, whatever the settings
    return keep
