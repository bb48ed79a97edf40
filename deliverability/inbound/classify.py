"""What an inbound message is: a pure function of its raw bytes.

Order matters and each step is cheap before the next: a feedback report (complaint) first,
since it attaches the original like a bounce does; then a delivery-status report; then an
unsubscribe request (Apple's one arrives marked auto-replied); then a non-standard bounce
(daemon sender, bounce subject or null Return-Path, and a failed recipient found); then
auto-replies (RFC 3834) before human replies, because an out-of-office must never stop a sequence.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum
from typing import Any

from deliverability.inbound import arf, autoreply, dsn, ses
from deliverability.inbound.parse import (
    Parsed,
    content_type,
    header,
    parse_bytes,
    part_text,
    walk,
)
from deliverability.inbound.reasons import class_for, reason_for, status_for


class Kind(StrEnum):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    UNSUBSCRIBE = "unsubscribe"
    REPLY = "reply"
    OTHER = "other"


@dataclass
class Recipient:
    """A failed (or complaining) recipient; `klass` is serialised as "class"."""

    address: str
    status: str | None = None
    remote_reply: str | None = None
    klass: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, str | None]:
        data = asdict(self)
        data["class"] = data.pop("klass")
        # A decoded body may hold NULs (quoted-printable `=00`): no JSON column stores them.
        return {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in data.items()}


@dataclass
class Classification:
    """The verdict on one message; `notes` say what the parser cut or repaired."""

    kind: Kind
    recipients: list[Recipient] = field(default_factory=list)
    original_message_id: str | None = None
    feedback_type: str | None = None
    return_date: str | None = None
    unsubscribe_token: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The shape `manage.py inbound parse` prints (issue 12), without the file name."""
        return {
            "kind": str(self.kind),
            "recipients": [r.as_json() for r in self.recipients],
            "original_message_id": self.original_message_id,
            "feedback_type": self.feedback_type,
        }


_DAEMON = re.compile(
    r"mailer-daemon|postmaster|mail delivery (subsystem|system)|"
    r"mail-daemon|mailerdaemon|\bmdaemon\b|bounce",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|non.?deliver|delivery (status|failure|failed|has failed|problem|"
    r"notification|report|error)|returned mail|failure notice|mail delivery failed|"
    r"could not be delivered|not delivered|returned to sender|bounce|mail system error|"
    r"permanent error|unzustellbar|delivery incomplete|error sending|failed delivery|"
    r"rejected|warning: could not|mail failure|delivery final failure|message you sent",
    re.IGNORECASE,
)
_UNSUBSCRIBE = re.compile(r"^\s*unsubscribe\b\s*(\S+)?", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(
    r"^\s*(re|aw|sv|vs|antw|réf|ref|rif|odp)\s*(\[\d+\])?\s*:", re.IGNORECASE
)


def classify(raw: bytes) -> Classification:
    return classify_parsed(parse_bytes(raw))


def classify_parsed(parsed: Parsed) -> Classification:
    """`classify` of a message already parsed by `parse_bytes` (the poller reads its matching
    headers from the same parse: one parse per message). Adds its notes to `parsed.notes`."""
    message, notes = parsed.message, parsed.notes
    verdict = (
        _complaint(message, notes)
        or _ses(message)
        or _bounce(message, notes)
        or _other(message, notes)
    )
    verdict.notes = list(dict.fromkeys(notes))
    return verdict


def _complaint(message: Message, notes: list[str]) -> Classification | None:
    found = arf.complaint(message, notes)
    if found is None:
        return None
    return Classification(
        kind=Kind.COMPLAINT,
        recipients=[Recipient(address=found.recipient)] if found.recipient else [],
        original_message_id=dsn.original_message_id(message, "", notes),
        feedback_type=found.feedback_type,
    )


def _bounce(message: Message, notes: list[str]) -> Classification | None:
    standard = dsn.delivery_status_failures(message, notes)
    if standard:
        failures = _fill_from_text(standard, message, notes)
    elif standard is None and not _looks_like_bounce(message, notes):
        return None
    else:
        failures = _nonstandard_failures(message, notes)
    if not failures:
        return None
    return Classification(
        kind=Kind.BOUNCE,
        recipients=[_recipient(f) for f in failures],
        original_message_id=dsn.original_message_id(message, _full_text(message), notes),
    )


def _nonstandard_failures(message: Message, notes: list[str]) -> list[dsn.Failure]:
    inline = dsn.inline_status_failures(message, notes)
    if inline:
        return _fill_from_text(inline, message, notes)
    text = dsn.bounce_text(message, notes)
    exclude = _own_addresses(message)
    known = dsn.library_recipients(message)
    failures = dsn.text_failures(text, exclude=exclude, known=known)
    if not failures:
        last = dsn.original_recipient(message, notes)
        failures = dsn.text_failures(text, exclude=set(), known=[last]) if last else []
    for failure in failures:
        if not failure.status and not failure.smtp_code:
            failure.context = text[:4000]
    return failures


def _ses(message: Message) -> Classification | None:
    """Amazon SES notifications forwarded by SNS as JSON mail."""
    if message.is_multipart():
        return None
    data = ses.notification(part_text(message))
    if data is None:
        return None
    original = ses.original_message_id(data)
    if data.get("notificationType") == "Complaint":
        addresses, feedback = ses.complained(data)
        return Classification(
            kind=Kind.COMPLAINT,
            recipients=[Recipient(a) for a in addresses],
            original_message_id=original,
            feedback_type=feedback,
        )
    failures = ses.bounce_failures(data)
    if data.get("notificationType") != "Bounce" or not failures:
        return None
    return Classification(
        kind=Kind.BOUNCE, recipients=[_recipient(f) for f in failures], original_message_id=original
    )


def _fill_from_text(
    failures: list[dsn.Failure], message: Message, notes: list[str]
) -> list[dsn.Failure]:
    """A report whose blocks state no code or reply: the prose beside it usually does."""
    if all(f.status and f.remote_reply for f in failures):
        return failures
    text = dsn.bounce_text(message, notes)
    by_address = {
        f.address: f
        for f in dsn.text_failures(text, exclude=set(), known=[f.address for f in failures])
    }
    for failure in failures:
        prose = by_address.get(failure.address)
        if prose is None:
            continue
        failure.status = failure.status or prose.status
        failure.smtp_code = failure.smtp_code or prose.smtp_code
        failure.remote_reply = failure.remote_reply or prose.remote_reply
    return failures


def _recipient(failure: dsn.Failure) -> Recipient:
    reason = reason_for(failure.status, f"{failure.remote_reply}\n{failure.context}")
    status = failure.status or status_for(reason, failure.smtp_code)
    if failure.action == "delayed" and status and status.startswith("5"):
        status = "4" + status[1:]  # a delay report is never final, whatever code it quotes
    return Recipient(
        address=failure.address,
        status=status,
        remote_reply=failure.remote_reply or None,
        klass=str(class_for(status, reason)),
        reason=str(reason),
    )


_BOUNCE_PROSE = re.compile(
    r"could not be delivered|undeliverable|delivery (has )?failed|permanent (fatal )?error|"
    r"was not delivered|returned mail|unable to deliver|error delivering|delivery failure|"
    r"message you sent .{0,40}(rejected|blocked)",
    re.IGNORECASE,
)


def _looks_like_bounce(message: Message, notes: list[str]) -> bool:
    if _DAEMON.search(header(message, "From")) or _BOUNCE_SUBJECT.search(
        header(message, "Subject")
    ):
        return True
    if content_type(message) == "multipart/report" or message.get("X-Failed-Recipients"):
        return True
    # A human answer threads (In-Reply-To); a machine notice in plain words does not.
    if message.get("In-Reply-To"):
        return False
    return bool(_BOUNCE_PROSE.search(dsn.bounce_text(message, notes)[:3000]))


def _own_addresses(message: Message) -> set[str]:
    """The bounce's own parties: the original sender it is addressed to and the daemon."""
    values = [header(message, name) for name in ("To", "From", "Return-Path", "Delivered-To")]
    return {address.lower() for _, address in getaddresses(values) if "@" in address}


def _other(message: Message, notes: list[str]) -> Classification:
    subject = header(message, "Subject")
    text = _full_text(message)
    unsubscribe = _UNSUBSCRIBE.match(subject)
    if unsubscribe or header(message, "X-Apple-Unsubscribe").lower() == "true":
        return Classification(
            kind=Kind.UNSUBSCRIBE, unsubscribe_token=unsubscribe.group(1) if unsubscribe else None
        )
    if autoreply.is_auto_reply(message, text):
        return Classification(kind=Kind.AUTO_REPLY, return_date=autoreply.return_date(text))
    if message.get("In-Reply-To") or message.get("References") or _REPLY_SUBJECT.match(subject):
        return Classification(kind=Kind.REPLY)
    return Classification(kind=Kind.OTHER)


def _full_text(message: Message) -> str:
    """The first text parts, for the quoted original and the out-of-office prose."""
    chunks = []
    for part in walk(message):
        if content_type(part).startswith("text/"):
            chunks.append(part_text(part))
        if len(chunks) >= 3:
            break
    return "\n".join(chunks)
