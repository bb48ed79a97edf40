"""The backup rule the alert engine evaluates every minute: a missed daily backup.

It fires only once backups are in use (some whole-database backup has completed), so a fresh
install or a test database does not alert before its first backup hour; a failed daily backup
alerts at once from the job itself (`backup.failed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

from penguinmails.alerts.rules import Finding, register_rule
from penguinmails.alerts.severity import Severity
from penguinmails.backups.models import Backup, BackupKind, BackupStatus

MISSED_RULE = "backup.missed"


@register_rule(MISSED_RULE)
def missed(now: datetime) -> Iterable[Finding]:
    newest = (
        Backup.objects.filter(
            kind=BackupKind.FULL, status__in=[BackupStatus.COMPLETED, BackupStatus.PRUNED]
        )
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    limit = timedelta(hours=settings.BACKUP_MAX_AGE_HOURS)
    if newest is None or now - newest <= limit:
        return []
    hours = int((now - newest).total_seconds() // 3600)
    return [
        Finding(
            subject="backups:daily",
            summary=(
                f"No whole-database backup for {hours} hours (last {newest:%Y-%m-%d %H:%M} UTC)"
            ),
            severity=Severity.CRITICAL,
            detail={
                "last_backup_at": newest.isoformat(),
                "max_age_hours": settings.BACKUP_MAX_AGE_HOURS,
            },
        )
    ]
