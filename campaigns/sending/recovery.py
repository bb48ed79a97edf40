"""Messages whose send run died, and the operator's resolution of `unknown` ones
(docs/sending.md, "Unknown: the policy").

The durable marker: a claimed message is `sending` with `smtp_code` NULL. Right after the
server's 354 and before the first byte of the body, the sender writes `smtp_code = 354` on the
row, in a statement that must touch exactly that claim (status, job and attempt) or the body is
withheld (one statement for the group of messages the sender drives at once on distinct
connections, each written only after its own 354). A `sending` row found without the marker
after its run died therefore never gave the server a message: it goes back to `queued` with its
Message-ID, its enrollment untouched. Only a row with the marker may have been delivered, and
only it becomes `unknown`.

The marker commits without waiting for fsync (`synchronous_commit` off in the statement, as the
queue's own bookkeeping does): it is visible to every other session once written, so a killed
worker, a re-run and the scheduler all see it; only a PostgreSQL crash within its WAL writer's
delay (200 ms) could lose one, and that message would be resent with the same Message-ID. A
synchronous commit per message would cost ~1.2 ms on the 2-core build machine, more than half of
a message's whole send time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from campaigns.lifecycles import MESSAGE_STATES
from campaigns.models import MessageStatus, StoppedBy
from campaigns.sending.enrollments import advance_enrollments, stop_enrollments
from campaigns.sending.sql import execute, fetch, values
from campaigns.services.stats import Bump, bump
from penguinmails.states import log_moves

S = MessageStatus
DATA_STARTED = 354  # smtp_code of a `sending` row whose body may have reached the server
DATA_STARTED_TEXT = "354 DATA started: the server may have the message"
WORKER_LOST = StoppedBy.WORKER_LOST  # stopped_by of a message put back in the queue after a crash
# A message whose send runs keep dying with it fails after this many claims (the pipeline's
# MAX_ATTEMPTS: every claim counts as an attempt).
MAX_CLAIMS = 5
SENT_COUNTERS = ("sent", "delivered")


def mark_data_started(claims: Sequence[tuple[int, int]], *, job_id: int) -> set[int]:
    """The durable marker of (message id, attempts) claims at DATA, written before their bodies
    go out (one statement for the group the sender drives at once; autocommit, no fsync wait).
    Returns the ids still claimed by this run: only their bodies may go."""
    if not claims:
        return set()
    body, params = values(claims, ["bigint", "integer"])
    rows = fetch(
        f"""
        UPDATE campaigns_message AS t
        SET smtp_code = %s, smtp_response = %s, updated_at = now()
        FROM ({body}) AS v(id, attempts)
        WHERE t.id = v.id AND t.status = %s AND t.job_id = %s AND t.attempts = v.attempts
          AND set_config('synchronous_commit', 'off', true) IS NOT NULL
        RETURNING t.id
        """,  # noqa: S608 - placeholders only
        [DATA_STARTED, DATA_STARTED_TEXT, *params, S.SENDING.value, job_id],
    )
    return {row[0] for row in rows}


@dataclass
class Recovered:
    requeued: int = 0  # never reached DATA: queued again, same Message-ID
    unknown: int = 0  # DATA started: may have been delivered
    failed: int = 0  # never reached DATA, but MAX_CLAIMS runs died on it


def recover_lost_sends(message_ids: Sequence[int], *, job_id: int | None, why: str) -> Recovered:
    """`sending` rows whose run died (`why` says how it was found). Without the marker: back to
    `queued`, kept on `job_id` (a re-run of that job sends them at once) or freed for the
    scheduler (None); failed instead after MAX_CLAIMS claims (a message that kills its worker
    every time). With it: `unknown`, and the sequence moves on as if it was sent."""
    result = Recovered()
    if not message_ids:
        return result
    now = timezone.now()
    ids = list(message_ids)
    with transaction.atomic():
        requeue = f"Back in the queue: {why}, before DATA (the server never got it)."
        gave_up = f"Gave up: {MAX_CLAIMS} send runs died with it before DATA ({why})."
        back = fetch(
            """
            UPDATE campaigns_message
            SET status = CASE WHEN attempts >= %s THEN %s ELSE %s END,
                job_id = CASE WHEN attempts >= %s THEN NULL ELSE %s::bigint END,
                stop_reason = CASE WHEN attempts >= %s THEN %s ELSE %s END,
                stopped_by = %s, smtp_code = NULL, smtp_response = '', updated_at = %s
            WHERE id = ANY(%s) AND status = %s AND smtp_code IS DISTINCT FROM %s
            RETURNING campaign_id, lead_id, step_id, variant_id, status, id
            """,
            [
                MAX_CLAIMS, S.FAILED.value, S.QUEUED.value, MAX_CLAIMS, job_id, MAX_CLAIMS,
                gave_up[:500], requeue[:500], WORKER_LOST, now, ids, S.SENDING.value,
                DATA_STARTED,
            ],
        )  # fmt: skip
        failed = [r for r in back if r[4] == S.FAILED]
        log_moves(
            MESSAGE_STATES,
            [(r[5], S.SENDING.value) for r in failed],
            S.FAILED,
            reason=gave_up,
            actor=job_id,
        )
        result.requeued = len(back) - len(failed)
        result.failed = len(failed)
        bump(Bump(c, step, variant, now.date(), "failed") for c, _, step, variant, *_ in failed)
        stop_enrollments([(c, lead, gave_up) for c, lead, *_ in failed])
        lost = fetch(
            """
            UPDATE campaigns_message
            SET status = %s, stopped_by = %s, stop_reason = %s, updated_at = %s
            WHERE id = ANY(%s) AND status = %s AND smtp_code = %s
            RETURNING campaign_id, lead_id, step_id, id
            """,
            [
                S.UNKNOWN.value,
                StoppedBy.UNKNOWN.value,
                f"{why}, after DATA started: the server may have it"[:500],
                now, ids, S.SENDING.value, DATA_STARTED,
            ],
        )  # fmt: skip
        result.unknown = len(lost)
        log_moves(
            MESSAGE_STATES,
            [(r[3], S.SENDING.value) for r in lost],
            S.UNKNOWN,
            reason=f"{why}, after DATA started: the server may have it",
            actor=job_id,
        )
        advance_enrollments([(c, lead, step, now) for c, lead, step, _ in lost])
    return result


# --- the operator's resolution of an unknown message --------------------------------------------
def resend_unknown(message_pk: int) -> bool:
    """unknown → queued, the Message-ID kept, so the next scheduler run sends it again
    (receivers that saw it drop a repeat by Message-ID). False if it was not unknown."""
    with transaction.atomic():
        moved = execute(
            "UPDATE campaigns_message SET status = %s, job_id = NULL, stopped_by = '', "
            "stop_reason = 'resent by an operator', scheduled_for = now(), updated_at = now() "
            "WHERE id = %s AND status = %s",
            [S.QUEUED.value, message_pk, S.UNKNOWN.value],
        )
        if moved:
            log_moves(
                MESSAGE_STATES,
                [(message_pk, S.UNKNOWN.value)],
                S.QUEUED,
                reason="resent by an operator",
            )
    return bool(moved)


def accept_unknown(message_pk: int) -> bool:
    """unknown → sent: the operator knows it arrived (the lead answered it, the server's log).
    Counted in the `sent` and `delivered` rollups today; the enrollment already moved on and the
    mailbox's quota was already used when it became unknown. False if it was not unknown."""
    now = timezone.now()
    with transaction.atomic():
        rows = fetch(
            "UPDATE campaigns_message SET status = %s, sent_at = COALESCE(sent_at, %s), "
            "stopped_by = '', stop_reason = 'accepted as sent by an operator', updated_at = %s "
            "WHERE id = %s AND status = %s RETURNING campaign_id, step_id, variant_id",
            [S.SENT.value, now, now, message_pk, S.UNKNOWN.value],
        )
        day = now.date()
        bump(Bump(c, step, v, day, counter) for c, step, v in rows for counter in SENT_COUNTERS)
        if rows:
            log_moves(
                MESSAGE_STATES,
                [(message_pk, S.UNKNOWN.value)],
                S.SENT,
                reason="accepted as sent by an operator",
            )
    return bool(rows)
