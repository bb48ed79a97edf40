"""Stop on reply: a lead marked replied gets nothing more from campaigns that stop on reply, and
the reply is counted once in the rollups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.utils.timezone import now

from campaigns.models import (
    CampaignLead,
    EnrollmentStatus,
    Lead,
    LeadStatus,
    MessageStatus,
)
from campaigns.services.campaigns.access import _actor, _in_schema
from campaigns.services.stats import Bump, bump
from penguinmails.errors import NotFound
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

REPLYABLE = (MessageStatus.SENT, MessageStatus.UNKNOWN)


def mark_lead_replied(principal: Principal, lead_id: int | str) -> Lead:
    """Mark a lead replied: campaigns with stop_on_reply send it nothing more (its enrollments
    there stop, the latest sent message of each gets replied_at and the `replied` rollup counts
    it). Idempotent; the reply poller (later) calls this too. Unsubscribed or bounced leads keep
    that stronger status."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        try:
            lead = Lead.objects.select_for_update().filter(pk=int(lead_id)).first()
        except (TypeError, ValueError):
            lead = None
        if lead is None:
            raise NotFound("No such lead.")
        if lead.status == LeadStatus.ACTIVE:
            lead.status = LeadStatus.REPLIED
            lead.save(update_fields=["status", "updated_at"])
            audit(
                "lead.replied",
                tenant=principal.tenant,
                actor=_actor(principal),
                lead_id=lead.pk,
            )
        _stop_on_reply(lead)
    return lead


def record_replies(lead_ids: Iterable[int], *, at: datetime) -> set[int]:
    """The inbound poller's `mark_lead_replied` for a chunk's replies (a system actor, no
    principal), in the caller's transaction, in two statements whatever their number: the
    active leads become replied (returned), and the latest sent message of each lead in each
    campaign gets replied_at (conditional, so a reply is counted once in the `replied` rollup).
    The enrollments' stop is the caller's (feedback_chunk stops them with the chunk's other
    stops, in the order its actions ran)."""
    ids = sorted(set(lead_ids))
    if not ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_lead SET status = %s, updated_at = %s "
            "WHERE id = ANY(%s) AND status = %s RETURNING id",
            [LeadStatus.REPLIED.value, at, ids, LeadStatus.ACTIVE.value],
        )
        changed = {int(row[0]) for row in cursor.fetchall()}
    _mark_latest_replied(ids, at)
    return changed


def _mark_latest_replied(lead_ids: list[int], at: datetime) -> None:
    """replied_at on the latest sent message of each lead in each campaign, and the `replied`
    rollup: one statement, conditional, so two concurrent calls count a reply once."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_message AS m SET replied_at = %s
            FROM (
                SELECT DISTINCT ON (lead_id, campaign_id) id, replied_at
                FROM campaigns_message
                WHERE lead_id = ANY(%s) AND status = ANY(%s) AND sent_at IS NOT NULL
                ORDER BY lead_id, campaign_id, sent_at DESC, id DESC
            ) AS latest
            WHERE m.id = latest.id AND latest.replied_at IS NULL AND m.replied_at IS NULL
            RETURNING m.campaign_id, m.step_id, m.variant_id, m.mailbox_id
            """,
            [at, lead_ids, [str(s) for s in REPLYABLE]],
        )
        replied = cursor.fetchall()
    bump(Bump(c, s, v, at.date(), "replied", 1, mb) for c, s, v, mb in replied)


def _stop_on_reply(lead: Lead) -> None:
    at = now()
    CampaignLead.objects.filter(
        lead=lead, status=EnrollmentStatus.ACTIVE, campaign__stop_on_reply=True
    ).update(status=EnrollmentStatus.STOPPED, next_due_at=None, stop_reason="Replied.")
    _mark_latest_replied([lead.pk], at)
