"""What campaigns does about mail read from its mailboxes (docs/inbound.md, "Actions"): the
receiver of `deliverability.signals.inbound_classified`, connected in CampaignsConfig.ready.

Runs inside deliverability's transaction for a chunk of inbound messages (which then marks
them processed), in the tenant's schema, once per message in order; the first call matches the
whole chunk (`match_reports`, the same answers as `match_message` each: VERP token,
In-Reply-To/References, quoted Message-ID; a forged token or another tenant's message matches
nothing, and nothing changes) and locks the messages it names. Then, by kind:

- hard bounce: the message becomes bounced (state machine), the lead bounced, the address
  suppressed (reason bounced, source inbound), every active enrollment of the lead stops;
- soft bounce: a bounce event; after INBOUND_SOFT_BOUNCE_LIMIT soft bounces of the address in
  INBOUND_SOFT_BOUNCE_DAYS, suppressed as a hard bounce would be (the message stays sent);
- complaint: suppressed (reason complaint), every enrollment of the lead stops, a complaint event
  and the `complained` rollup (deliverability counts it against the mailbox and domain);
- unsubscribe request: `unsubscribe_message`, exactly as the one-click POST;
- human reply: `record_reply` (stop on reply, `replied` rollup) and a reply event;
- auto-reply: matched (the unified inbox threads it); it never stops the sequence. When it
  states a return date, an auto_reply event records it, and in the campaigns with
  `delay_on_out_of_office` the lead's next step waits until that day begins (campaign timezone),
  at most INBOUND_OOO_MAX_DELAY_DAYS ahead. Anything else: nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser  # type: ignore[import-untyped]
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns import webhook_events
from campaigns.models import (
    Campaign,
    CampaignLead,
    EnrollmentStatus,
    EventKind,
    Message,
    MessageEvent,
    MessageStatus,
    SuppressionReason,
)
from campaigns.sending.enrollments import delay_enrollments
from campaigns.services import stats
from campaigns.services.campaigns.replies import record_reply
from campaigns.services.matching import Report, match_reports
from campaigns.services.suppressions import mark_leads_bounced, suppress_many
from campaigns.tracking import tokens
from campaigns.tracking.unsubscribe import unsubscribe_message
from penguinmails import batching, states
from tenants.models import Tenant

log = logging.getLogger(__name__)

BOUNCEABLE = (MessageStatus.SENT, MessageStatus.UNKNOWN)


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
        batching.remember(("campaigns.feedback", id(chunk)), lambda: _Chunk.of(tenant, chunk))
        if chunk
        else _Chunk.of(tenant, [_Item(inbound, classification, headers)], alone=True)
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
    webhook_events.inbound(kind, message, at, action)
    return {"message_id": message.pk, "mailbox_id": message.mailbox_id, "action": action}


@dataclass(frozen=True)
class _Item:
    """One message of a chunk, as deliverability sends it (inbound_store.Classified)."""

    inbound: Any
    classification: Any
    headers: Any


@dataclass
class _Chunk:
    """A chunk's matches (inbound pk -> message pk), its matched messages (locked), and what
    its actions read of each other's writes: the soft bounces of each bounced address (counted
    once, then kept up to date) and the messages given a complaint event. In a chunk the events
    are written at its end, in one INSERT (penguinmails.batching); alone, at once."""

    matches: dict[int, int]
    messages: dict[int, Message]
    soft: dict[str, int]
    alone: bool = False
    complained: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, tenant: Tenant, chunk: Sequence[Any], *, alone: bool = False) -> _Chunk:
        """Match every message of the chunk (two queries), lock the messages they name (one
        query, in pk order) and count the bounced addresses' soft bounces (one). A message
        matched twice is one object, so the second action sees what the first did to it (a
        bounced message is not bounced again)."""
        items = [i for i in chunk if str(i.classification.kind) != "other"]
        pending: list[tuple[int, Report]] = []
        matches: dict[int, int] = {}
        for item in items:
            pk = _by_token(tenant, item.classification)
            if pk is not None:
                matches[item.inbound.pk] = pk
            else:
                pending.append((item.inbound.pk, _report(item.classification, item.headers)))
        found = match_reports(tenant, [report for _, report in pending]) if pending else []
        matches.update({i: pk for (i, _), pk in zip(pending, found, strict=True) if pk is not None})
        wanted = set(matches.values())
        locked = Message.objects.select_for_update().filter(pk__in=wanted).order_by("pk")
        messages = {m.pk: m for m in locked} if wanted else {}
        bounced = {
            messages[matches[i.inbound.pk]].to_email.strip().lower()
            for i in items
            if str(i.classification.kind) == "bounce" and matches.get(i.inbound.pk) in messages
        }
        return cls(matches, messages, _soft_bounces(bounced), alone)

    def add(self, event: MessageEvent, to_email: str) -> None:
        """An event written now (alone) or at the chunk's end, counted for what reads it."""
        if event.kind == EventKind.COMPLAINT:
            self.complained.add(event.message_id)
        if event.kind == EventKind.BOUNCE and event.machine_reason.startswith("soft"):
            self.soft[to_email.lower()] = self.soft.get(to_email.lower(), 0) + 1
        if self.alone or not batching.defer(_write_events, [event]):
            event.save()


def _write_events(events: list[MessageEvent]) -> None:
    MessageEvent.objects.bulk_create(events)


def _soft_bounces(addresses: set[str]) -> dict[str, int]:
    """The soft bounce events of each address in the last INBOUND_SOFT_BOUNCE_DAYS (any
    message to it, the address compared without case), in one query."""
    if not addresses:
        return {}
    since = timezone.now() - timedelta(days=settings.INBOUND_SOFT_BOUNCE_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.address, COUNT(*) FROM unnest(%s::text[]) AS a(address)
            JOIN campaigns_message m ON UPPER(m.to_email::text) = UPPER(a.address)
            JOIN campaigns_messageevent e ON e.message_id = m.id
            WHERE e.kind = %s AND e.machine_reason LIKE 'soft%%' AND e.at >= %s
            GROUP BY a.address
            """,
            [sorted(addresses), EventKind.BOUNCE.value, since],
        )
        return {address: int(n) for address, n in cursor.fetchall()}


def _by_token(tenant: Tenant, classification: Any) -> int | None:
    """An unsubscribe request's signed token, when it is this tenant's (not looked up)."""
    if str(classification.kind) == "unsubscribe" and classification.unsubscribe_token:
        token = _unsubscribe_token(classification.unsubscribe_token)
        if token is not None and token.tenant_id == tenant.pk:
            return int(token.message_pk)
    return None


def _report(classification: Any, headers: Any) -> Report:
    return Report(
        verp_rcpts=[*headers.delivered_to, None][:20],
        in_reply_to=headers.in_reply_to or None,
        references=headers.references or None,
        original_message_id=classification.original_message_id,
    )


def _unsubscribe_token(text: str) -> tokens.Token | None:
    """The token in an unsubscribe subject: the one-click URL's (what compose puts in the
    mailto's subject) or the mailto address's form; None when neither verifies."""
    try:
        return tokens.verify(text, kind=tokens.TokenKind.UNSUBSCRIBE)
    except tokens.BadToken:
        pass
    try:
        return tokens.verify_mailto(text)
    except tokens.BadToken:
        return None


def _event(message: Message, kind: str, at: datetime, chunk: _Chunk, reason: str = "") -> None:
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


def _stop_lead(lead_id: int, reason: str, at: datetime) -> int:
    return CampaignLead.objects.filter(lead_id=lead_id, status=EnrollmentStatus.ACTIVE).update(
        status=EnrollmentStatus.STOPPED, next_due_at=None, stop_reason=reason, updated_at=at
    )


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


def _bounce(message: Message, classification: Any, at: datetime, chunk: _Chunk) -> str:
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
        if message.status in BOUNCEABLE:
            states.transition(
                message,
                MessageStatus.BOUNCED,
                reason=f"bounce {status} read from the mailbox",
                bounced_at=at,
            )
            _bump(message, "bounced", at)
    suppress_many([address], reason=SuppressionReason.BOUNCED, source=source, at=at)
    mark_leads_bounced([message.lead_id], at=at)
    stopped = _stop_lead(message.lead_id, "Bounced.", at)
    return f"{klass} bounce {status}: suppressed, {stopped} enrollment(s) stopped"


def _complaint(message: Message, classification: Any, at: datetime, chunk: _Chunk) -> str:
    address = message.to_email.strip().lower()
    suppress_many(
        [address],
        reason=SuppressionReason.COMPLAINT,
        source=f"inbound: complaint, message {message.pk}",
        at=at,
    )
    stopped = _stop_lead(message.lead_id, "Complained.", at)
    if (
        message.pk not in chunk.complained
        and not MessageEvent.objects.filter(
            message_id=message.pk, kind=EventKind.COMPLAINT
        ).exists()
    ):
        _bump(message, "complained", at)
    _event(message, EventKind.COMPLAINT, at, chunk, str(classification.feedback_type or "abuse"))
    return f"complaint: suppressed, {stopped} enrollment(s) stopped"


def _unsubscribe(message: Message, classification: Any, at: datetime, chunk: _Chunk) -> str:
    done = unsubscribe_message(message.pk, at=at, source="mailto")
    return "unsubscribed" if done else "already unsubscribed"


def _reply(message: Message, classification: Any, at: datetime, chunk: _Chunk) -> str:
    _event(message, EventKind.REPLY, at, chunk)
    changed = record_reply(message.lead_id)
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


def _auto_reply(message: Message, classification: Any, at: datetime, chunk: _Chunk) -> str:
    """An auto-reply never stops the sequence; with a stated return date, the lead's next step
    waits for it in the campaigns that ask for that (delay_on_out_of_office), capped."""
    campaign = Campaign.objects.filter(pk=message.campaign_id).first()
    zone = ZoneInfo(campaign.timezone if campaign else "UTC")
    back = return_day(classification.return_date, at.astimezone(zone).date())
    if back is None:
        return "auto-reply: sequence unchanged (no return date stated)"
    cap = at + timedelta(days=settings.INBOUND_OOO_MAX_DELAY_DAYS)
    until = min(datetime.combine(back, time(), tzinfo=zone), cap)
    moved = delay_enrollments(message.lead_id, until)
    if moved:
        reason = f"out of office until {back.isoformat()}: next step due {until:%Y-%m-%d %H:%M %Z}"
    else:
        reason = f"out of office until {back.isoformat()}: sequence unchanged"
    _event(message, EventKind.AUTO_REPLY, at, chunk, reason)
    return f"auto-reply: {reason} ({len(moved)} enrollment(s) delayed)"
