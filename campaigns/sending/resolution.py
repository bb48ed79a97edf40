"""Resolving an `unknown` message (docs/sending.md, "Unknown: the policy"): the service the
dashboard, the API and `manage.py campaigns resend|accept` call.

An unknown message may or may not have reached its lead, so the pipeline never decides alone:
someone who can write campaigns either resends it with its same Message-ID (a receiver that has
it drops the repeat) or accepts it as sent. Each resolution is audited.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import transaction

from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.sending import recovery
from campaigns.sending.dispatch import request_schedule
from penguinmails.errors import IllegalTransition, NotFound, ValidationFailed
from tenants.permissions import Area, Level
from tenants.services import audit
from tenants.services.access import Principal, require


class Resolution(StrEnum):
    RESEND = "resend"  # back to queued with the same Message-ID
    ACCEPT = "accept"  # counted as sent


# A resent message is only picked up by the scheduler, which visits running campaigns; a paused
# one sends it on resume. Anything else would leave it queued for ever.
RESENDABLE_CAMPAIGN = (CampaignStatus.RUNNING, CampaignStatus.PAUSED)


def access_message(
    principal: Principal, message_id: int | str, *, campaign: Campaign | None = None
) -> Message:
    """One of the tenant's messages (of `campaign` when given), or NotFound."""
    require(principal, Area.CAMPAIGNS, Level.READ)
    try:
        pk = int(message_id)
    except (TypeError, ValueError):
        raise NotFound("No such message.") from None
    rows = Message.objects.select_related("campaign").filter(pk=pk)
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
    found = rows.first()
    if found is None:
        raise NotFound("No such message.")
    return found


def resolve_unknown_message(
    principal: Principal, message: Message, *, action: str, via: str
) -> Message:
    """Resend or accept an unknown message; refused for any other status, and a resend for a
    campaign that is neither running nor paused (nothing would send it)."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    if action not in {r.value for r in Resolution}:
        choices = ", ".join(r.value for r in Resolution)
        raise ValidationFailed(
            "Unknown resolution.", fields={"action": [f"Choose one of: {choices}."]}
        )
    with transaction.atomic():
        locked = Message.objects.select_for_update().select_related("campaign").get(pk=message.pk)
        campaign = locked.campaign
        if locked.status != MessageStatus.UNKNOWN:
            raise IllegalTransition(
                f"Message {locked.pk} is {locked.status}; only an unknown message is resolved "
                "(anything else went out or will be retried by the sender)."
            )
        if action == Resolution.RESEND:
            if campaign.status not in RESENDABLE_CAMPAIGN:
                raise IllegalTransition(
                    f"The campaign is {campaign.status}; a message is resent only while its "
                    "campaign is running or paused (nothing else sends it)."
                )
            recovery.resend_unknown(locked.pk)
            if campaign.status == CampaignStatus.RUNNING:
                request_schedule(principal.tenant, campaign_id=campaign.pk)
        else:
            recovery.accept_unknown(locked.pk)
        audit.record(
            "message.resent" if action == Resolution.RESEND else "message.accepted",
            tenant=principal.tenant,
            actor=principal.user,
            campaign_id=campaign.pk,
            message_id=locked.pk,
            rfc_message_id=locked.message_id,
            via=via,
        )
    locked.refresh_from_db()
    return locked
