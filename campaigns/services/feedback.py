"""What campaigns does about mail read from its mailboxes (docs/inbound.md, "Actions"): the
receiver of `deliverability.signals.inbound_classified`, connected in CampaignsConfig.ready.

Runs inside deliverability's transaction for a chunk of inbound messages (which then marks
them processed), in the tenant's schema, once per message in order. The first call builds the
chunk's `feedback_chunk.Chunk`: every message matched (`match_reports`, the same answers as
`match_message` each: VERP token, In-Reply-To/References, quoted Message-ID; a forged token or
another tenant's message matches nothing, and nothing changes), the messages it names locked,
what the actions read of their leads read at once. The actions decide in memory, each seeing
what the ones before it decided, and the chunk writes their decisions at its end in a few
set-based statements (alone, after each). By kind:

- hard bounce: the message becomes bounced (state machine), the lead bounced, the address
  suppressed (reason bounced, source inbound), every active enrollment of the lead stops;
- soft bounce: a bounce event; after INBOUND_SOFT_BOUNCE_LIMIT soft bounces of the address in
  INBOUND_SOFT_BOUNCE_DAYS, suppressed as a hard bounce would be (the message stays sent);
- complaint: suppressed (reason complaint), every enrollment of the lead stops, a complaint event
  and the `complained` rollup (deliverability counts it against the mailbox and domain);
- unsubscribe request: `unsubscribe_message`, exactly as the one-click POST;
- human reply: the lead marked replied, its enrollments in stop_on_reply campaigns stopped,
  replied_at and the `replied` rollup (`record_replies`), and a reply event;
- auto-reply: matched (the unified inbox threads it); it never stops the sequence. When it
  states a return date, an auto_reply event records it, and in the campaigns with
  `delay_on_out_of_office` the lead's next step waits until that day begins (campaign timezone),
  at most INBOUND_OOO_MAX_DELAY_DAYS ahead. Anything else: nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser  # type: ignore[import-untyped]
from django.conf import settings
from django.utils import timezone

from campaigns import webhook_events
from campaigns.models import Campaign, EventKind, Message, MessageEvent, SuppressionReason
from campaigns.sending.enrollments import delay_enrollments
from campaigns.services import stats
from campaigns.services.feedback_chunk import Chunk, Item
from campaigns.tracking.unsubscribe import unsubscribe_message
from penguinmails import batching
from tenants.models import Tenant

log = logging.getLogger(__name__)


def on_inbound_classified(
    sender: Any,
    *,
    tenant: Tenant,
    inbound: Any,
    classification: Any,
    headers: Any,
    chunk: Sequence[Any] = (),
    **_: Any,
) -> dict[str, Any] | None:
    kind = str(classification.kind)
    if kind == "other":
        return None
    # The chunk's messages are matched and locked together, once (the first of them asks).
    found = (
        batching.remember(("campaigns.feedback", id(chunk)), lambda: Chunk.of(tenant, chunk))
        if chunk
        else Chunk.of(tenant, [Item(inbound, classification, headers)], alone=True)
    )
    message_pk = found.matches.get(inbound.pk)
    if message_pk is None:
        return {"action": "no message of ours matched"}
    message = found.messages.get(message_pk)
    if message is None:
        return None
    at = timezone.now()
    act = {
        "bounce": _bounce,
        "complaint": _complaint,
        "unsubscribe": _unsubscribe,
        "reply": _reply,
        "auto_reply": _auto_reply,
    }.get(kind)
    action = act(message, classification, at, found) if act else "nothing to do"
    if found.alone:
        found.flush()
    webhook_events.inbound(kind, message, at, action)
    return {"message_id": message.pk, "mailbox_id": message.mailbox_id, "action": action}


def _event(message: Message, kind: str, at: datetime, chunk: Chunk, reason: str = "") -> None:
    event = MessageEvent(
        message_id=message.pk,
        campaign_id=message.campaign_id,
        kind=kind,
        at=at,
        machine_reason=reason[:100],
    )
    chunk.add(event, message.to_email)


def _bump(message: Message, counter: str, at: datetime) -> None:
    stats.bump([stats.Bump.of(message, at.date(), counter)])


def _recipient_class(message: Message, classification: Any) -> tuple[str, str]:
    """(class, status) of the recipient that is our message's, else of the first one."""
    ours = message.to_email.strip().lower()
    chosen = None
    for recipient in classification.recipients:
        if (recipient.address or "").strip().lower() == ours:
            chosen = recipient
            break
    chosen = chosen or (classification.recipients[0] if classification.recipients else None)
    if chosen is None:
        return "soft", ""
    return (chosen.klass or "soft"), (chosen.status or "")


def _bounce(message: Message, classification: Any, at: datetime, chunk: Chunk) -> str:
    klass, status = _recipient_class(message, classification)
    address = message.to_email.strip().lower()
    _event(message, EventKind.BOUNCE, at, chunk, f"{klass} {status}".strip())
    if klass != "hard":
        soft = chunk.soft.get(address, 0)  # this one included
        if soft < settings.INBOUND_SOFT_BOUNCE_LIMIT:
            return (
                f"soft bounce {status} counted ({soft} in {settings.INBOUND_SOFT_BOUNCE_DAYS} days)"
            )
        source = f"inbound: {soft} soft bounces in {settings.INBOUND_SOFT_BOUNCE_DAYS} days"
    else:
        source = f"inbound: hard bounce {status}, message {message.pk}"
        if chunk.bounce_message(message, f"bounce {status} read from the mailbox", at):
            _bump(message, "bounced", at)
    chunk.suppress(address, SuppressionReason.BOUNCED, source, at)
    chunk.mark_bounced(message.lead_id, at)
    stopped = chunk.stop(message.lead_id, "Bounced.", at)
    return f"{klass} bounce {status}: suppressed, {stopped} enrollment(s) stopped"


def _complaint(message: Message, classification: Any, at: datetime, chunk: Chunk) -> str:
    address = message.to_email.strip().lower()
    chunk.suppress(
        address, SuppressionReason.COMPLAINT, f"inbound: complaint, message {message.pk}", at
    )
    stopped = chunk.stop(message.lead_id, "Complained.", at)
    if message.pk not in chunk.complained:
        _bump(message, "complained", at)
    _event(message, EventKind.COMPLAINT, at, chunk, str(classification.feedback_type or "abuse"))
    return f"complaint: suppressed, {stopped} enrollment(s) stopped"


def _unsubscribe(message: Message, classification: Any, at: datetime, chunk: Chunk) -> str:
    chunk.before_own_writes(message.lead_id)
    done = unsubscribe_message(message.pk, at=at, source="mailto")
    chunk.unsubscribed(message.lead_id)
    return "unsubscribed" if done else "already unsubscribed"


def _reply(message: Message, classification: Any, at: datetime, chunk: Chunk) -> str:
    _event(message, EventKind.REPLY, at, chunk)
    changed = chunk.reply(message.lead_id, at)
    return "reply: lead marked replied" if changed else "reply: lead already replied or stopped"


# A numeric date the classifier left as written (day and month both possible): never guessed.
_AMBIGUOUS = re.compile(r"^\d{1,2}[./]\d{1,2}[./]\d{2,4}$")


def return_day(stated: str | None, today: date) -> date | None:
    """The day an auto-reply's stated return date means, or None when it states none, cannot be
    read, is ambiguous (05/06/2026) or is past. A date without a year is the next such day
    ("until 12 January" written in December is next January)."""
    text = (stated or "").strip()
    if not text or _AMBIGUOUS.match(text):
        return None
    try:
        day = dateparser.parse(text, default=datetime.combine(today, time()), fuzzy=True).date()
    except (ValueError, OverflowError):
        return None
    if day < today and not re.search(r"\d{4}", text):
        try:
            day = day.replace(year=day.year + 1)
        except ValueError:  # 29 February
            return None
    return day if day > today else None


def _auto_reply(message: Message, classification: Any, at: datetime, chunk: Chunk) -> str:
    """An auto-reply never stops the sequence; with a stated return date, the lead's next step
    waits for it in the campaigns that ask for that (delay_on_out_of_office), capped."""
    campaign = Campaign.objects.filter(pk=message.campaign_id).first()
    zone = ZoneInfo(campaign.timezone if campaign else "UTC")
    back = return_day(classification.return_date, at.astimezone(zone).date())
    if back is None:
        return "auto-reply: sequence unchanged (no return date stated)"
    cap = at + timedelta(days=settings.INBOUND_OOO_MAX_DELAY_DAYS)
    until = min(datetime.combine(back, time(), tzinfo=zone), cap)
    chunk.before_own_writes(message.lead_id)
    moved = delay_enrollments(message.lead_id, until)
    if moved:
        reason = f"out of office until {back.isoformat()}: next step due {until:%Y-%m-%d %H:%M %Z}"
    else:
        reason = f"out of office until {back.isoformat()}: sequence unchanged"
    _event(message, EventKind.AUTO_REPLY, at, chunk, reason)
    return f"auto-reply: {reason} ({len(moved)} enrollment(s) delayed)"
