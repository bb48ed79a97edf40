"""Retention keeps the newest backup of each of the last 7 days, 4 weeks and 12 months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from penguinmails.backups.retention import kept


def test_it_keeps_seven_daily_four_weekly_twelve_monthly() -> None:
    start = datetime(2026, 12, 5, 3, tzinfo=UTC)
    # One backup a day for 400 days, plus a second (manual) one on the newest day.
    backups = [(i, start - timedelta(days=i)) for i in range(400)]
    backups.append((1000, start + timedelta(hours=5)))
    keep = kept(backups, daily=7, weekly=4, monthly=12)
    days = {at.date() for pk, at in backups if pk in keep}
    assert 1000 in keep and 0 not in keep  # the newest of the newest day, not both
    assert {start.date() - timedelta(days=d) for d in range(1, 7)} <= days
    months = {(at.year, at.month) for pk, at in backups if pk in keep}
    assert len(months) == 12
    assert len(keep) <= 7 + 4 + 12
    oldest_kept = min(at for pk, at in backups if pk in keep)
    assert oldest_kept > start - timedelta(days=366)


def test_it_never_prunes_the_newest_even_with_zero_kept() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert kept([(1, at), (2, at + timedelta(days=1))], daily=0, weekly=0, monthly=0) == {2}
