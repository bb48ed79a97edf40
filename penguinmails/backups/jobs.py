"""The backup jobs beat enqueues (penguinmails/schedule.py): the daily backup with retention,
and the monthly verification. Both alert when they fail; the next success resolves the alert."""

from __future__ import annotations

import logging

from penguinmails.alerts.services import raise_alert, resolve_alert
from penguinmails.alerts.severity import Severity
from penguinmails.backups.restore import verify_backup
from penguinmails.backups.services import (
    create_backup,
    fail_interrupted_backups,
    prune_backups,
)
from penguinmails.errors import DomainError
from penguinmails.queue.registry import JobContext, Payload, job_handler

log = logging.getLogger(__name__)

DAILY_RULE = "backup.failed"
DAILY_SUBJECT = "backups:daily"
SIX_HOURS = 6 * 3600


def _progress(line: str) -> None:
    # The per-table lines are for a person at a terminal; a worker's log gets the milestones.
    if not line.startswith("  "):
        log.info("%s", line)


@job_handler("backups.daily", priority=200, max_attempts=1, timeout=SIX_HOURS)
def daily(payload: Payload, context: JobContext) -> None:
    """Dump the whole database, then prune what retention no longer keeps."""
    try:
        backup = create_backup(reason="daily", progress=_progress)
    except (DomainError, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise_alert(
            DAILY_RULE,
            DAILY_SUBJECT,
            summary=f"The daily backup failed: {message[:300]}",
            severity=Severity.CRITICAL,
            detail={"error": message[:2000], "job": context.job_id},
        )
        raise
    resolve_alert(DAILY_RULE, DAILY_SUBJECT, note=f"backup #{backup.pk} completed")
    fail_interrupted_backups()
    pruned = prune_backups()
    log.info("backup #%s completed; %s old backup(s) pruned", backup.pk, len(pruned))


@job_handler("backups.verify", priority=200, max_attempts=1, timeout=SIX_HOURS)
def verify(payload: Payload, context: JobContext) -> None:
    """Restore the latest whole-database backup into a scratch database and compare (the
    service raises or resolves the `backup.verify_failed` alert itself)."""
    result = verify_backup(progress=_progress)
    if not result.ok:
        raise DomainError(f"backup #{result.backup.pk} failed verification")
