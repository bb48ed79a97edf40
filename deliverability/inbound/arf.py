"""Complaints: ARF feedback reports (RFC 5965) and the providers' own feedback-loop forms.

Microsoft's JMRP/SNDS loop sends no message/feedback-report part, only the complained-about
message attached, with X-HmXmrOriginalRecipient naming our recipient; it is recognised by that
header or by a report from a known feedback-loop sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from deliverability.inbound.dsn import ADDRESS, original_recipient
from deliverability.inbound.parse import content_type, header, part_text, walk

_FEEDBACK_TYPES = {"message/feedback-report"}
_FBL_SENDERS = re.compile(
    r"@(hotmail|outlook|live|msn)\.com|staff@|fbl|feedback|abuse", re.IGNORECASE
)
_FBL_SUBJECT = re.compile(r"complaint about message|abuse report|feedback report", re.IGNORECASE)
_HOTMAIL_RECIPIENT = re.compile(r"^X-HmXmrOriginalRecipient:\s*(\S+)", re.IGNORECASE | re.M)


@dataclass
class Complaint:
    """The complained-about recipient (when the report names it) and the feedback type."""

    recipient: str | None
    feedback_type: str


def complaint(message: Message, notes: list[str]) -> Complaint | None:
    report_type = message.get_param("report-type") or ""
    report = None
    for part in walk(message, notes):
        if content_type(part) in _FEEDBACK_TYPES:
            report = part
            break
    if report is not None or str(report_type).lower() == "feedback-report":
        fields = _fields(report) if report is not None else {}
        recipient = fields.get("original-rcpt-to") or fields.get("removal-recipient") or ""
        found = (
            ADDRESS.search(recipient)
            or _embedded_recipient(message, notes)
            or original_recipient(message, notes)
        )
        address = found if isinstance(found, str) or found is None else found.group(0)
        return Complaint(
            recipient=address.lower() if address else None,
            feedback_type=(fields.get("feedback-type") or "abuse").lower(),
        )
    hotmail = _embedded_recipient(message, notes)
    if hotmail and (
        _FBL_SENDERS.search(header(message, "From"))
        or _FBL_SUBJECT.search(header(message, "Subject"))
    ):
        return Complaint(recipient=hotmail.lower(), feedback_type="abuse")
    return None


def _fields(report: Message) -> dict[str, str]:
    """The report's fields, first value of each, lower-case names."""
    payload = report.get_payload()
    blocks = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    fields: dict[str, str] = {}
    for block in blocks:
        for name in block.keys():
            fields.setdefault(name.lower(), header(block, name))
    if not fields:
        for line in part_text(report).splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() and " " not in name.strip():
                fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _embedded_recipient(message: Message, notes: list[str]) -> str | None:
    """Microsoft names the complaining recipient in the attached original."""
    for part in walk(message, notes):
        value = part.get("X-HmXmrOriginalRecipient")
        if value:
            found = ADDRESS.search(str(value))
            return found.group(0) if found else None
    found = _HOTMAIL_RECIPIENT.search(part_text(message) if not message.is_multipart() else "")
    return found.group(1) if found else None
