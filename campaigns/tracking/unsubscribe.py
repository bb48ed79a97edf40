"""Unsubscribing: the write behind the unsubscribe page, the RFC 8058 one-click POST, the
List-Unsubscribe mailto address, and buffered unsubscribes the flusher applies.

Written synchronously by the endpoint (a rare request, and the recipient must be honoured at
once: the next step of the sequence may be minutes away); only when PostgreSQL is unreachable
does the endpoint buffer it in Redis, and the flusher applies it later with the same function.
Idempotent: a second unsubscribe of the same message changes nothing and counts nothing.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns import webhook_events
from campaigns.models import (
    CampaignLead,
    EnrollmentStatus,
    EventKind,
    Lead,
    LeadStatus,
    Message,
    MessageEvent,
    Suppression,
    SuppressionReason,
)
from campaigns.services import stats
from campaigns.tracking import links, tokens
from tenants.models import Tenant

STOP_REASON = "unsubscribed"


class UnknownMessage(LookupError):
    """The token is good but its tenant or message is gone: nothing left to unsubscribe."""


def unsubscribe_message(
    message_pk: int,
    *,
    at: dt.datetime | None = None,
    source: str = "link",
    ip: str | None = None,
    user_agent: str = "",
) -> bool:
    """Unsubscribe the lead of message `message_pk` in the current tenant schema: the message's
    unsubscribed_at, the lead's status, a suppression of the address, every active enrollment of
    the lead stopped, an unsubscribe event and the `unsubscribed` rollup. True when this call
    did it, False when the message was already unsubscribed."""
    when = at or timezone.now()
    with transaction.atomic():
        row = (
            Message.objects.select_for_update()
            .filter(pk=message_pk)
            .values(
                "campaign_id", "step_id", "variant_id", "lead_id", "to_email", "unsubscribed_at"
            )
            .first()
        )
        if row is None:
            raise UnknownMessage(f"message {message_pk} does not exist")
        if row["unsubscribed_at"] is not None:
            return False
        Message.objects.filter(pk=message_pk).update(unsubscribed_at=when, updated_at=when)
        lead_id = row["lead_id"]
        Lead.objects.filter(pk=lead_id).update(status=LeadStatus.UNSUBSCRIBED, updated_at=when)
        email = (Lead.objects.filter(pk=lead_id).values_list("email", flat=True).first()
                 or row["to_email"]).strip().lower()  # fmt: skip
        Suppression.objects.get_or_create(
            value=email,
            defaults={
                "reason": SuppressionReason.UNSUBSCRIBED,
                "source": f"unsubscribe ({source}), message {message_pk}",
            },
        )
        CampaignLead.objects.filter(lead_id=lead_id, status=EnrollmentStatus.ACTIVE).update(
            status=EnrollmentStatus.STOPPED, stop_reason=STOP_REASON, updated_at=when
        )
        MessageEvent.objects.create(
            message_id=message_pk,
            campaign_id=row["campaign_id"],
            kind=EventKind.UNSUBSCRIBE,
            at=when,
            ip=ip or None,
            user_agent=user_agent[:500],
            machine_reason="",
        )
        stats.bump(
            [
                stats.Bump(
                    row["campaign_id"],
                    row["step_id"],
                    row["variant_id"],
                    when.date(),
                    "unsubscribed",
                )
            ]
        )
        webhook_events.unsubscribed(message_pk, row, email, when, source)
    return True


def unsubscribe(
    tenant_id: int,
    message_pk: int,
    *,
    at: dt.datetime | None = None,
    source: str = "link",
    ip: str | None = None,
    user_agent: str = "",
) -> bool:
    """`unsubscribe_message` in tenant `tenant_id`'s schema; UnknownMessage if it is gone."""
    schema = Tenant.objects.filter(pk=tenant_id).values_list("schema_name", flat=True).first()
    if schema is None:
        raise UnknownMessage(f"tenant {tenant_id} does not exist")
    with schema_context(schema):
        return unsubscribe_message(message_pk, at=at, source=source, ip=ip, user_agent=user_agent)


def unsubscribe_by_address(address: str) -> bool:
    """Mail to a List-Unsubscribe address (`unsubscribe-<token>@...`, any case): unsubscribe
    its message's lead. BadToken for an address that is not one of ours or was tampered with;
    UnknownMessage when the message is gone."""
    local = address.strip().strip("<>").rsplit("@", 1)[0]
    prefix = links.MAILTO_PREFIX
    if not local.lower().startswith(prefix):
        raise tokens.BadToken("not an unsubscribe address")
    token = tokens.verify_mailto(local[len(prefix) :])
    return unsubscribe(token.tenant_id, token.message_pk, source="mailto")
