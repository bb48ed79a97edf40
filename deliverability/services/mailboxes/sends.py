"""What the workers' pool and the send pipeline record per mailbox: sends today, failure
streaks (pausing after `PAUSE_AFTER_FAILURES` in a row).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from deliverability.models import Mailbox, MailboxStatus
from deliverability.services.mailboxes.lifecycle import pause_mailbox

# The workers' pool pauses a mailbox after this many sends in a row failed (smtp_pool.py).
PAUSE_AFTER_FAILURES = 3


def record_send_success(mailbox_id: int) -> None:
    """One UPDATE: the failure streak ends and today's count grows (a new day starts at 1)."""
    now = timezone.now()
    today = now.date()
    Mailbox.objects.filter(pk=mailbox_id).update(
        consecutive_failures=0,
        last_sent_at=now,
        sent_today=Case(When(sent_on=today, then=F("sent_today") + 1), default=Value(1)),
        sent_on=today,
    )


def record_sends(counts: Mapping[int, int], *, at: datetime) -> int:
    """`record_send_success` for many sends at once (the send pipeline's chunk): per mailbox id,
    `counts[id]` more sent today, the failure streak ended, `last_sent_at` = `at`. One
    `UPDATE ... FROM (VALUES ...)` per 1,000 mailboxes; returns the rows touched."""
    rows = [(mailbox_id, n) for mailbox_id, n in counts.items() if mailbox_id and n]
    day = at.astimezone(UTC).date()
    touched = 0
    for start in range(0, len(rows), 1000):
        part = rows[start : start + 1000]
        body = ", ".join(["(%s::bigint, %s::integer)"] + ["(%s, %s)"] * (len(part) - 1))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE deliverability_mailbox AS t
                SET consecutive_failures = 0, last_sent_at = %s, sent_on = %s,
                    sent_today = CASE WHEN t.sent_on = %s THEN t.sent_today + v.n ELSE v.n END
                FROM (VALUES {body}) AS v(id, n)
                WHERE t.id = v.id
                """,  # noqa: S608 - the VALUES list is placeholders only
                [at, day, day, *(value for row in part for value in row)],
            )
            touched += cursor.rowcount
    return touched


def record_send_failure(
    mailbox_id: int, *, step: str, error: str, pause_after: int = PAUSE_AFTER_FAILURES
) -> bool:
    """Count a failed send; after `pause_after` in a row the mailbox is paused with the reason
    recorded. True when this failure paused it."""
    with transaction.atomic():
        mailbox = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
        if mailbox is None:
            return False
        mailbox.consecutive_failures += 1
        mailbox.last_error, mailbox.last_error_step = error[:500], step[:16]
        mailbox.save(update_fields=["consecutive_failures", "last_error", "last_error_step"])
        if mailbox.consecutive_failures < pause_after or mailbox.status not in (
            MailboxStatus.ACTIVE,
            MailboxStatus.FAILING,
        ):
            return False
        reason = f"{mailbox.consecutive_failures} sends in a row failed; last: {step}: {error}"
        pause_mailbox(None, mailbox, reason=reason)
    return True


def sent_today(mailbox: Mailbox) -> int:
    return mailbox.sent_today if mailbox.sent_on == timezone.now().date() else 0
