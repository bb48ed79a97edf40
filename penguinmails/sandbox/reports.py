"""The messages a sandbox recipient sends back, built with the stdlib email package.

- `dsn`: an RFC 3464 delivery status notification (multipart/report; report-type=
  delivery-status): a human part, message/delivery-status (Reporting-MTA, Arrival-Date, then
  Final-Recipient, Action: failed, Status: 5.1.1, Diagnostic-Code), the original's headers as
  text/rfc822-headers. Addressed to the envelope sender, from MAILER-DAEMON, null Return-Path.
- `arf`: an RFC 5965 abuse report (multipart/report; report-type=feedback-report): a human part,
  message/feedback-report (Feedback-Type: abuse, User-Agent, Version: 1, Original-Mail-From,
  Original-Rcpt-To, Arrival-Date), the original as message/rfc822.
- `reply`: a person's answer: From the prospect, "Re: " subject, In-Reply-To and References.
- `auto_reply`: an RFC 3834 out-of-office (Auto-Submitted: auto-replied) stating a return date.
"""

from __future__ import annotations

import email
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from typing import Protocol

USER_AGENT = "PenguinMails-Sandbox/1.0"
DIAGNOSTIC = "smtp; 550 5.1.1 user unknown"
# Lines of the original's text a reply quotes.
_QUOTED_LINES = 6


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "sandbox.invalid"


def _original(raw: bytes) -> Message:
    return email.message_from_bytes(raw)


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _headers_text(raw: bytes) -> str:
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return head.decode("utf-8", "replace") + "\n"


def _fields(pairs: list[tuple[str, str]]) -> Message:
    block = Message()
    for name, value in pairs:
        block[name] = value
    return block


def _stamp(message: Message, *, sender: str, to: str, subject: str, domain: str) -> None:
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain)


def dsn(raw: bytes, *, envelope_sender: str, recipient: str) -> bytes:
    """The delivery failure report for `recipient` (user unknown), to `envelope_sender`."""
    mta = f"mx.{_domain(recipient)}"
    report = MIMEMultipart("report")
    report.set_param("report-type", "delivery-status")
    _stamp(
        report,
        sender=f"Mail Delivery System <MAILER-DAEMON@{mta}>",
        to=envelope_sender,
        subject="Undelivered Mail Returned to Sender",
        domain=mta,
    )
    report["Auto-Submitted"] = "auto-replied"
    report.attach(
        MIMEText(
            f"This is the mail system at host {mta}.\n\n"
            "I'm sorry to have to inform you that your message could not be delivered to one "
            "or more recipients.\n\n"
            f"<{recipient}>: host {mta} said: 550 5.1.1 <{recipient}>: Recipient address "
            "rejected: User unknown in virtual mailbox table\n",
            "plain",
            "utf-8",
        )
    )
    status = MIMEBase("message", "delivery-status")
    status.set_payload(
        [
            _fields(
                [
                    ("Reporting-MTA", f"dns; {mta}"),
                    ("Arrival-Date", formatdate(usegmt=True)),
                ]
            ),
            _fields(
                [
                    ("Final-Recipient", f"rfc822; {recipient}"),
                    ("Original-Recipient", f"rfc822; {recipient}"),
                    ("Action", "failed"),
                    ("Status", "5.1.1"),
                    ("Remote-MTA", f"dns; {mta}"),
                    ("Diagnostic-Code", DIAGNOSTIC),
                ]
            ),
        ]
    )
    report.attach(status)
    report.attach(MIMEText(_headers_text(raw), "rfc822-headers", "utf-8"))
    return report.as_bytes()


def arf(raw: bytes, *, envelope_sender: str, recipient: str) -> bytes:
    """The abuse report `recipient`'s provider sends back (RFC 5965)."""
    original = _original(raw)
    domain = _domain(recipient)
    report = MIMEMultipart("report")
    report.set_param("report-type", "feedback-report")
    _stamp(
        report,
        sender=f"Feedback Loop <fbl@{domain}>",
        to=envelope_sender,
        subject=f"Abuse report: {_header(original, 'Subject')}".strip(),
        domain=domain,
    )
    report.attach(
        MIMEText(
            f"This is an email abuse report for an email message received from "
            f"{envelope_sender} on {formatdate(usegmt=True)}.\n"
            f"The recipient {recipient} marked it as spam.\n",
            "plain",
            "utf-8",
        )
    )
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload(
        "Feedback-Type: abuse\n"
        f"User-Agent: {USER_AGENT}\n"
        "Version: 1\n"
        f"Original-Mail-From: <{envelope_sender}>\n"
        f"Original-Rcpt-To: <{recipient}>\n"
        f"Arrival-Date: {formatdate(usegmt=True)}\n"
        f"Reported-Domain: {_domain(envelope_sender)}\n"
    )
    report.attach(feedback)
    report.attach(MIMEMessage(original))
    return report.as_bytes()


def _thread(message: Message, original: Message) -> None:
    original_id = _header(original, "Message-ID")
    if original_id:
        message["In-Reply-To"] = original_id
        references = _header(original, "References")
        message["References"] = f"{references} {original_id}".strip()


def _reply_to(original: Message, envelope_sender: str) -> str:
    return _header(original, "Reply-To") or _header(original, "From") or envelope_sender


def _subject(prefix: str, original: Message) -> str:
    subject = _header(original, "Subject")
    if subject.lower().startswith(prefix.lower()):
        return subject
    return f"{prefix}{subject}"


def _first_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                try:
                    return payload.decode(part.get_content_charset() or "utf-8", "replace")
                except LookupError:  # an unknown charset
                    return payload.decode("utf-8", "replace")
    return ""


def reply(raw: bytes, *, envelope_sender: str, recipient: str) -> bytes:
    """A person's answer from `recipient`, to the original's Reply-To or From."""
    original = _original(raw)
    quoted = "".join(f"> {line}\n" for line in _first_text(original).splitlines()[:_QUOTED_LINES])
    message = MIMEText(
        "Hi,\n\nThanks for reaching out. This sounds interesting: could we talk next week?\n\n"
        f"Best,\n{recipient.partition('@')[0]}\n\n{quoted}",
        "plain",
        "utf-8",
    )
    _stamp(
        message,
        sender=recipient,
        to=_reply_to(original, envelope_sender),
        subject=_subject("Re: ", original),
        domain=_domain(recipient),
    )
    _thread(message, original)
    return message.as_bytes()


def auto_reply(
    raw: bytes, *, envelope_sender: str, recipient: str, today: date | None = None
) -> bytes:
    """An out-of-office from `recipient` to the envelope sender (RFC 3834 section 4)."""
    original = _original(raw)
    back = (today or datetime.now(UTC).date()) + timedelta(days=10)
    message = MIMEText(
        f"I am out of the office until {back.isoformat()} with limited access to email.\n"
        "Your message will not be forwarded; I will read it when I am back.\n",
        "plain",
        "utf-8",
    )
    _stamp(
        message,
        sender=recipient,
        to=envelope_sender,
        subject=_subject("Automatic reply: ", original),
        domain=_domain(recipient),
    )
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    _thread(message, original)
    return message.as_bytes()


class Builder(Protocol):
    def __call__(self, raw: bytes, *, envelope_sender: str, recipient: str) -> bytes: ...


BUILDERS: dict[str, Builder] = {"bounce": dsn, "complain": arf, "reply": reply, "ooo": auto_reply}
