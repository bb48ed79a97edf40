"""The send path's set-based enrollment moves (one statement per 1,000 rows): a campaign that
starts enrols its lists' leads, a sent (or unknown) message advances its lead's enrollment, a
final stop ends it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from campaigns.lifecycles import ENROLLMENT_STATES
from campaigns.models import Campaign, EnrollmentStatus, SequenceStep
from campaigns.sending.sql import chunks, execute, fetch, values
from penguinmails.states import log_moves


def stop_enrollments(rows: Sequence[tuple[int, int, str]]) -> None:
    """(campaign, lead, reason): the active enrollment stops with the reason (logged, one
    INSERT per chunk: a stop is never routine)."""
    for part in chunks(rows, 1000):
        body, params = values(
            [(c, lead, r[:200]) for c, lead, r in part], ["bigint", "bigint", "text"]
        )
        stopped = fetch(
            f"""
            UPDATE campaigns_campaignlead AS e
            SET status = %s, next_due_at = NULL, stop_reason = v.reason, updated_at = now()
            FROM ({body}) AS v(campaign_id, lead_id, reason)
            WHERE e.campaign_id = v.campaign_id AND e.lead_id = v.lead_id AND e.status = %s
            RETURNING e.id, %s::text, v.reason
            """,  # noqa: S608 - placeholders only
            [
                EnrollmentStatus.STOPPED.value,
                *params,
                EnrollmentStatus.ACTIVE.value,
                EnrollmentStatus.ACTIVE.value,
            ],
        )
        log_moves(ENROLLMENT_STATES, stopped, EnrollmentStatus.STOPPED)


def advance_enrollments(rows: Sequence[tuple[int, int, int, datetime]]) -> None:
    """(campaign, lead, step, sent at): the enrollment moves to the next step, due its delay
    after this send, or finishes after the last step. Conditional on still being at this step,
    so a repeat never skips a step."""
    for part in chunks(rows, 1000):
        body, params = values(part, ["bigint", "bigint", "bigint", "timestamptz"])
        execute(
            f"""
            UPDATE campaigns_campaignlead AS e
            SET next_step = s."order" + 1,
                status = CASE WHEN nx.id IS NULL THEN %s ELSE %s END,
                next_due_at = CASE WHEN nx.id IS NULL THEN NULL
                    ELSE v.at + make_interval(hours => nx.delay_amount
                        * CASE WHEN nx.delay_unit = 'days' THEN 24 ELSE 1 END) END,
                last_sent_at = v.at, updated_at = now()
            FROM ({body}) AS v(campaign_id, lead_id, step_id, at)
            JOIN campaigns_sequencestep s ON s.id = v.step_id
            LEFT JOIN campaigns_sequencestep nx
                   ON nx.campaign_id = s.campaign_id AND nx."order" = s."order" + 1
            WHERE e.campaign_id = v.campaign_id AND e.lead_id = v.lead_id
              AND e.status = %s AND e.next_step = s."order"
            """,  # noqa: S608 - placeholders only
            [
                EnrollmentStatus.FINISHED.value,
                EnrollmentStatus.ACTIVE.value,
                *params,
                EnrollmentStatus.ACTIVE.value,
            ],
        )


def enrol(campaign: Campaign, *, now: datetime) -> int:
    """Enrol every lead of the campaign's lists not enrolled yet (one statement). The first
    step is due its delay after the campaign starts (or now, for leads added later)."""
    first = SequenceStep.objects.filter(campaign=campaign).order_by("order").first()
    if first is None:
        return 0
    start = max(now, campaign.start_at) if campaign.start_at else now
    due = start + timedelta(hours=first.delay_hours)
    return execute(
        """
        INSERT INTO campaigns_campaignlead
            (campaign_id, lead_id, status, next_step, next_due_at, stop_reason, created_at,
             updated_at)
        SELECT DISTINCT %s, ll.lead_id, %s, %s, %s, '', %s, %s
        FROM campaigns_lead_lists ll
        JOIN campaigns_campaign_lead_lists cl ON cl.leadlist_id = ll.leadlist_id
        WHERE cl.campaign_id = %s
        ON CONFLICT (campaign_id, lead_id) DO NOTHING
        """,
        [campaign.pk, EnrollmentStatus.ACTIVE.value, first.order, due, now, now, campaign.pk],
    )


def delay_enrollments(lead_id: int, not_before: datetime) -> list[tuple[int, datetime]]:
    """The lead's next step waits until `not_before` in every campaign that asks for it
    (delay_on_out_of_office): an active enrollment whose next step is due earlier moves to
    `not_before`. One in flight (next_due_at NULL: being sent) or due later is left alone.
    Returns (campaign, new due) per enrollment moved."""
    return [
        (int(campaign_id), due)
        for campaign_id, due in fetch(
            """
            UPDATE campaigns_campaignlead AS e
            SET next_due_at = %s, updated_at = now()
            FROM campaigns_campaign c
            WHERE c.id = e.campaign_id AND c.delay_on_out_of_office
              AND e.lead_id = %s AND e.status = %s
              AND e.next_due_at IS NOT NULL AND e.next_due_at < %s
            RETURNING e.campaign_id, e.next_due_at
            """,
            [not_before, lead_id, EnrollmentStatus.ACTIVE.value, not_before],
        )
    ]
