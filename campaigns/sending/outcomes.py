"""What the batched send writes besides a chunk's results (campaigns.sending.pipeline): the
messages the checks stopped, the logged outcomes, the suppressions of a hard bounce; and the
order the sender drives a chunk in (runs on distinct mailboxes)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from django.utils import timezone

from campaigns.lifecycles import MESSAGE_STATES
from campaigns.models import Campaign, MessageStatus, SuppressionReason
from campaigns.sending.checks import Item, Stop
from campaigns.sending.enrollments import stop_enrollments
from campaigns.sending.sql import chunks, fetch, values
from campaigns.services.suppressions import mark_leads_bounced, suppress_many
from penguinmails.states import log_moves

S = MessageStatus


# --- stops ---------------------------------------------------------------------------------------
def record_stops(campaign: Campaign, stops: Sequence[Stop], job_id: int) -> None:
    now = timezone.now()
    rows = [
        (
            s.item.pk,
            S.SKIPPED.value if s.final else S.QUEUED.value,
            s.check,
            s.reason[:500],
            s.retry_at or s.item.scheduled_for,
        )
        for s in stops
    ]
    for part in chunks(rows, 1000):
        body, params = values(part, ["bigint", "text", "text", "text", "timestamptz"])
        moved = fetch(
            f"""
            UPDATE campaigns_message AS t
            SET status = v.status, stopped_by = v.check_name, stop_reason = v.reason,
                scheduled_for = v.retry_at, job_id = NULL, updated_at = %s
            FROM ({body}) AS v(id, status, check_name, reason, retry_at)
            WHERE t.id = v.id AND t.status = %s AND t.job_id = %s
            RETURNING t.id, v.status, v.check_name || ': ' || v.reason
            """,  # noqa: S608 - placeholders only
            [now, *params, S.QUEUED.value, job_id],
        )
        # A held message stays queued (no move); a skipped one is logged.
        skipped = [(pk, S.QUEUED.value, why) for pk, status, why in moved if status == S.SKIPPED]
        log_moves(MESSAGE_STATES, skipped, S.SKIPPED, actor=job_id)
    stop_enrollments(
        [(campaign.pk, s.item.lead_id, f"{s.check}: {s.reason}") for s in stops if s.final]
    )


def by_mailbox(items: Sequence[Item]) -> Iterator[list[Item]]:
    """The items in order, in runs on distinct mailboxes (a new run where a mailbox repeats)."""
    group: list[Item] = []
    for item in items:
        if any(i.mailbox_id == item.mailbox_id for i in group):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def log_outcomes(moved: Sequence[tuple[int, str, str]], job_id: int) -> None:
    """Log the non-routine outcomes (failed, bounced, unknown): one INSERT each. Sent and
    retried messages are routine (MESSAGE_STATES.quiet): their rows already say enough."""
    by_status: dict[str, list[tuple[int, str, str]]] = {}
    for pk, status, why in moved:
        if MESSAGE_STATES.logs(S.SENDING, status):
            by_status.setdefault(status, []).append((pk, S.SENDING.value, why or ""))
    for status, rows in by_status.items():
        log_moves(MESSAGE_STATES, rows, status, actor=job_id)


def suppress_bounced(items: Sequence[Item], now: datetime) -> None:
    """A hard bounce suppresses the address and marks the lead bounced (campaigns' own services,
    set-based)."""
    suppress_many(
        (i.to_email for i in items),
        reason=SuppressionReason.BOUNCED,
        source="hard bounce at send time",
        at=now,
    )
    mark_leads_bounced((i.lead_id for i in items), at=now)
