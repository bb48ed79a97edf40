"""The unified inbox (docs/inbound.md, "Unified inbox"): every reply and auto-reply read from the
tenant's mailboxes, newest first, threaded with the campaign message it answers; labels, read
state, and answers sent from the same mailbox with In-Reply-To and References.

One owner per table: the replies are deliverability's `InboundMessage` rows, only read here; the
label, the read state and the answers sent are campaigns' own (`InboxState`, `InboxReply`,
keyed by the inbound message's id), written only by the functions below.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.message import Message as MimeMessage
from email.utils import formataddr, formatdate, parseaddr

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from campaigns.models import InboxLabel, InboxReply, InboxState, Message
from campaigns.sending.compose import new_message_id
from campaigns.services.campaigns.access import _email, _in_schema
from deliverability import dkim
from deliverability.inbound.parse import parse_bytes, walk
from deliverability.models import InboundMessage
from deliverability.smtp_pool import Outcome, SmtpPool
from penguinmails.errors import Conflict, NotFound, ValidationFailed
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

INBOX_KINDS = ("reply", "auto_reply")
BODY_LIMIT = 20_000
SNIPPET = 160

# Obvious phrases only; the first list that matches wins (checked in this order).
SUGGESTIONS: tuple[tuple[InboxLabel, tuple[str, ...]], ...] = (
    (
        InboxLabel.NOT_INTERESTED,
        (
            "not interested",
            "unsubscribe",
            "remove me",
            "stop emailing",
            "no thanks",
            "no thank you",
        ),
    ),
    (
        InboxLabel.WRONG_PERSON,
        ("wrong person", "not the right person", "no longer work", "no longer with"),
    ),
    (
        InboxLabel.MEETING_BOOKED,
        ("let's meet", "lets meet", "book a call", "schedule a call", "let's talk", "calendly"),
    ),
    (InboxLabel.INTERESTED, ("interested", "sounds good", "tell me more", "more info")),
)


@dataclass
class InboxItem:
    """One inbound reply with what the inbox knows about it."""

    inbound: InboundMessage
    state: InboxState | None
    message: Message | None  # the campaign message it answers
    replies: list[InboxReply] = field(default_factory=list)
    from_address: str = ""
    from_name: str = ""
    subject: str = ""
    body: str = ""
    references: str = ""

    @property
    def id(self) -> int:
        return self.inbound.pk

    @property
    def kind(self) -> str:
        return self.inbound.kind

    @property
    def label(self) -> str:
        return self.state.label if self.state else ""

    @property
    def read(self) -> bool:
        return bool(self.state and self.state.read_at)

    @property
    def snippet(self) -> str:
        return " ".join(self.body.split())[:SNIPPET]

    @property
    def suggested_label(self) -> str:
        return suggest_label(self.kind, self.body)


def suggest_label(kind: str, text: str) -> str:
    if kind == "auto_reply":
        return InboxLabel.OUT_OF_OFFICE.value
    lowered = _own_text(text).lower().replace("\u2019", "'")
    for label, phrases in SUGGESTIONS:
        if any(p in lowered for p in phrases):
            return label.value
    return ""


def _own_text(text: str) -> str:
    """The reply without the quoted message below it (lines starting with '>', 'On ... wrote:')."""
    lines = []
    for line in text.splitlines():
        if line.startswith(">") or re.match(r"^On .+wrote:\s*$", line):
            break
        lines.append(line)
    return "\n".join(lines)


# --- reading ----------------------------------------------------------------------------------
def inbox_queryset() -> QuerySet[InboundMessage]:
    """Every reply and auto-reply of this tenant's mailboxes, newest first (tenant schema)."""
    return (
        InboundMessage.objects.filter(kind__in=INBOX_KINDS)
        .select_related("mailbox")
        .order_by("-received_at", "-id")
    )


def filter_inbox(
    rows: QuerySet[InboundMessage],
    *,
    campaign: int | None = None,
    mailbox: int | None = None,
    label: str = "",
    unread: bool | None = None,
) -> QuerySet[InboundMessage]:
    if campaign is not None:
        rows = rows.filter(
            matched_message_id__in=Message.objects.filter(campaign_id=campaign).values("pk")
        )
    if mailbox is not None:
        rows = rows.filter(mailbox_id=mailbox)
    if label:
        rows = rows.filter(pk__in=InboxState.objects.filter(label=label).values("inbound_id"))
    if unread is not None:
        read = Q(pk__in=InboxState.objects.filter(read_at__isnull=False).values("inbound_id"))
        rows = rows.exclude(read) if unread else rows.filter(read)
    return rows


def unread_counts() -> dict[str, int]:
    """{"total": n, "<mailbox id>": n, ...}: unread replies, in one query."""
    rows = filter_inbox(inbox_queryset(), unread=True).order_by()
    by_mailbox = {
        str(r["mailbox_id"]): r["n"] for r in rows.values("mailbox_id").annotate(n=Count("id"))
    }
    return {"total": sum(by_mailbox.values()), **by_mailbox}


def unread_total() -> int:
    return filter_inbox(inbox_queryset(), unread=True).count()


def hydrate(rows: list[InboundMessage], *, full: bool = False) -> list[InboxItem]:
    """Items for a page of rows in a fixed number of queries (states, messages, answers)."""
    ids = [r.pk for r in rows]
    states = {s.inbound_id: s for s in InboxState.objects.filter(inbound_id__in=ids)}
    message_ids = {r.matched_message_id for r in rows if r.matched_message_id}
    messages = Message.objects.select_related("campaign", "step").in_bulk(message_ids)
    answers: dict[int, list[InboxReply]] = {}
    for answer in InboxReply.objects.filter(inbound_id__in=ids):
        answers.setdefault(answer.inbound_id, []).append(answer)
    items = []
    for row in rows:
        item = InboxItem(
            inbound=row,
            state=states.get(row.pk),
            message=messages.get(row.matched_message_id or 0),
            replies=answers.get(row.pk, []),
        )
        _read_mime(item, full=full)
        items.append(item)
    return items


def _read_mime(item: InboxItem, *, full: bool) -> None:
    raw = item.inbound.raw
    if not raw:  # cleared after INBOUND_RAW_RETENTION_DAYS: the thread still shows what we sent
        item.subject = item.message.subject if item.message else ""
        return
    try:
        data = zlib.decompress(bytes(raw))
    except zlib.error:
        return
    mime = parse_bytes(data).message
    item.from_name, item.from_address = parseaddr(str(mime.get("Reply-To") or mime.get("From", "")))
    item.subject = _header(mime, "Subject")
    item.references = " ".join(
        v for v in (_header(mime, "References"), item.inbound.message_id) if v
    )
    item.body = _text_body(mime)[: BODY_LIMIT if full else SNIPPET * 4]


def _header(mime: MimeMessage, name: str) -> str:
    value = mime.get(name)
    if value is None:
        return ""
    try:
        return " ".join(str(make_header(decode_header(str(value)))).split())
    except (ValueError, LookupError, UnicodeError):
        return " ".join(str(value).split())


def _text_body(mime: MimeMessage) -> str:
    html = ""
    for part in walk(mime):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = payload.decode(part.get_content_charset() or "utf-8", "replace")
        if ctype == "text/plain":
            return text
        html = html or re.sub(r"<[^>]+>", " ", text)
    return html


def list_inbox(principal: Principal, **filters: object) -> QuerySet[InboundMessage]:
    require(principal, Area.CAMPAIGNS, Level.READ)
    _in_schema(principal)
    return filter_inbox(inbox_queryset(), **filters)  # type: ignore[arg-type]


def access_inbox_item(principal: Principal, inbound_id: int | str) -> InboxItem:
    """One reply of this tenant's inbox, read in full, or NotFound."""
    require(principal, Area.CAMPAIGNS, Level.READ)
    _in_schema(principal)
    try:
        row = inbox_queryset().filter(pk=int(inbound_id)).first()
    except (TypeError, ValueError):
        row = None
    if row is None:
        raise NotFound("No such reply in the inbox.")
    return hydrate([row], full=True)[0]


# --- writes -----------------------------------------------------------------------------------
def label_reply(principal: Principal, item: InboxItem, *, label: str) -> InboxItem:
    """Set (or clear, with "") the reply's label."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    if label and label not in InboxLabel.values:
        raise ValidationFailed("Unknown label.", fields={"label": ["Unknown label."]})
    with transaction.atomic():
        item.state = _state(item.id, label=label)
        audit(
            "inbox.label",
            tenant=principal.tenant,
            actor=principal.user,
            inbound=item.id,
            label=label,
        )
    return item


def mark_read(principal: Principal, item: InboxItem, *, read: bool = True) -> InboxItem:
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    with transaction.atomic():
        item.state = _state(item.id, read_at=timezone.now() if read else None)
    return item


def _state(inbound_id: int, **values: object) -> InboxState:
    state, _ = InboxState.objects.select_for_update().get_or_create(inbound_id=inbound_id)
    for name, value in values.items():
        setattr(state, name, value)
    state.updated_at = timezone.now()
    state.save()
    return state


def reply_subject(subject: str) -> str:
    subject = subject.strip()
    return subject if re.match(r"^re:", subject, re.IGNORECASE) else f"Re: {subject}".strip()


def send_reply(principal: Principal, item: InboxItem, *, body: str) -> InboxReply:
    """Answer the prospect from the mailbox the reply came to, over SMTP (the send pipeline's
    pool: netguard vets the address), In-Reply-To its Message-ID and References its References
    plus its Message-ID, so the answer lands in the prospect's thread. Recorded as an
    InboxReply and the reply marked read."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    body = body.strip()
    if not body:
        raise ValidationFailed("Write a reply first.", fields={"body": ["This field is required."]})
    mailbox = item.inbound.mailbox
    to_addr = item.from_address or (item.message.to_email if item.message else "")
    if not to_addr or "@" not in to_addr:
        raise Conflict("The reply names no address to answer.")
    raw, headers = _compose(item, mailbox.display_name, mailbox.address, to_addr, body)
    with SmtpPool(tenant=principal.tenant, mailbox_ids=[mailbox.pk]) as pool:
        delivery = pool.deliver(raw, mailbox=mailbox, from_addr=mailbox.address, to_addr=to_addr)
    if delivery.outcome != Outcome.ACCEPTED:
        raise Conflict(f"The mailbox's server did not take the reply: {delivery.response}".strip())
    with transaction.atomic():
        answer = InboxReply.objects.create(
            inbound_id=item.id,
            mailbox=mailbox,
            to_email=to_addr,
            body=body,
            smtp_code=delivery.code,
            smtp_response=delivery.response[:500],
            sent_by_email=_email(principal),
            **headers,
        )
        item.state = _state(item.id, read_at=timezone.now())
        audit("inbox.reply", tenant=principal.tenant, actor=principal.user, inbound=item.id)
    item.replies.append(answer)
    return answer


def _compose(
    item: InboxItem, name: str, address: str, to_addr: str, body: str
) -> tuple[bytes, dict[str, str]]:
    domain = address.rpartition("@")[2]
    headers = {
        "subject": reply_subject(item.subject or (item.message.subject if item.message else "")),
        "message_id": new_message_id(domain),
        "in_reply_to": item.inbound.message_id,
        "references": item.references,
    }
    for value in headers.values():
        if any(c in value for c in "\r\n\x00"):
            raise ValidationFailed("A header of the reply holds a line break; nothing was sent.")
    mail = EmailMessage()
    mail["From"] = formataddr((name, address))
    mail["To"] = to_addr
    mail["Subject"] = headers["subject"]
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = headers["message_id"]
    if headers["in_reply_to"]:
        mail["In-Reply-To"] = headers["in_reply_to"]
    if headers["references"]:
        mail["References"] = headers["references"]
    mail.set_content(body)
    raw = mail.as_bytes()
    key = dkim.key_for(domain)
    return (dkim.sign(raw, key) if key is not None else raw), headers
