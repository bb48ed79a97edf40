"""The beat jobs and the alert rule: a failed daily backup raises `backup.failed` (a later
success resolves it); a backup older than BACKUP_MAX_AGE_HOURS fires `backup.missed`."""

from __future__ import annotations

import importlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from penguinmails import schedule
from penguinmails.alerts.models import Alert
from penguinmails.alerts.services import evaluate_rules
from penguinmails.alerts.severity import AlertState
from penguinmails.backups.models import Backup, BackupKind, BackupStatus
from penguinmails.backups.pg import PostgresToolError
from penguinmails.queue.registry import JobContext, get_handler
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)


def _context() -> JobContext:
    return JobContext(
        job_id=1, attempt=1, tenant_id=None, schema_name="public", worker_id="t",
        heartbeat=lambda: None,
    )  # fmt: skip


def test_a_failed_daily_backup_alerts_and_a_good_one_resolves(
    cast: Cast, backup_dir: Path, settings: Any, tmp_path: Path
) -> None:
    daily = get_handler("backups.daily").func
    settings.BACKUP_PG_BIN_DIR = str(tmp_path)  # no pg_dump there
    with pytest.raises(PostgresToolError, match="pg_dump is not installed"):
        daily({}, _context())
    alert = Alert.objects.get(rule="backup.failed", subject="backups:daily")
    assert alert.state == AlertState.FIRING and "pg_dump is not installed" in alert.summary

    settings.BACKUP_PG_BIN_DIR = ""
    daily({}, _context())
    assert Backup.objects.get(status=BackupStatus.COMPLETED).reason == "daily"
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_a_missed_daily_backup_fires_and_clears(cast: Cast, settings: Any) -> None:
    now = timezone.now()
    settings.BACKUP_MAX_AGE_HOURS = 26
    evaluate_rules(now)
    assert not Alert.objects.filter(rule="backup.missed").exists()  # no backups yet: silent
    old = Backup.objects.create(
        kind=BackupKind.FULL, status=BackupStatus.COMPLETED, storage="dir",
        started_at=now - timedelta(hours=30),
    )  # fmt: skip
    evaluate_rules(now)
    alert = Alert.objects.get(rule="backup.missed")
    assert alert.state == AlertState.FIRING and "30 hours" in alert.summary
    Backup.objects.filter(pk=old.pk).update(started_at=now - timedelta(hours=2))
    evaluate_rules(now)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_beat_runs_the_daily_backup_at_backup_hour_and_verifies_monthly() -> None:
    os.environ["BACKUP_HOUR"] = "5"
    try:
        beat = importlib.reload(schedule).BEAT_SCHEDULE
        daily, monthly = beat["backups-daily"], beat["backups-verify-monthly"]
        assert daily["args"] == ("backups.daily",) and get_handler("backups.daily")
        assert daily["schedule"].hour == {5} and daily["schedule"].minute == {0}
        assert monthly["args"] == ("backups.verify",) and get_handler("backups.verify")
        assert monthly["schedule"].hour == {7} and monthly["schedule"].day_of_month == {1}
    finally:
        del os.environ["BACKUP_HOUR"]
        importlib.reload(schedule)
