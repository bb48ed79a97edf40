"""Amazon SES notifications delivered by mail (SNS email subscriptions): JSON, not MIME reports.

The body is the notification itself or an SNS envelope whose "Message" holds it as a string.
Bounces name each recipient with the status and diagnostic SES saw; complaints name the
complaining recipients and the feedback type.
"""

from __future__ import annotations

import json
from typing import Any

from deliverability.inbound.dsn import Failure

MAX_JSON = 512 * 1024


def notification(text: str) -> dict[str, Any] | None:
    """The SES notification in a mail body, or None when the body is not one."""
    start = text.find("{")
    if start < 0 or start > 200 or "notificationType" not in text[:MAX_JSON]:
        return None
    try:
        data, _ = json.JSONDecoder(strict=False).raw_decode(text[start:MAX_JSON])
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:
            data = json.loads(data["Message"], strict=False)
        except ValueError:
            return None
    return data if isinstance(data, dict) and "notificationType" in data else None


def bounce_failures(data: dict[str, Any]) -> list[Failure]:
    bounce = data.get("bounce") or {}
    permanent = bounce.get("bounceType") == "Permanent"
    failures = []
    for entry in bounce.get("bouncedRecipients") or []:
        if not isinstance(entry, dict) or "@" not in str(entry.get("emailAddress", "")):
            continue
        status = str(entry.get("status") or "") or ("5.0.0" if permanent else "4.0.0")
        failures.append(
            Failure(
                address=str(entry["emailAddress"]).lower(),
                status=status,
                remote_reply=str(entry.get("diagnosticCode") or bounce.get("bounceSubType") or ""),
                action=str(entry.get("action") or ""),
            )
        )
    return failures


def complained(data: dict[str, Any]) -> tuple[list[str], str]:
    complaint = data.get("complaint") or {}
    addresses = [
        str(e.get("emailAddress")).lower()
        for e in complaint.get("complainedRecipients") or []
        if isinstance(e, dict) and e.get("emailAddress")
    ]
    return addresses, str(complaint.get("complaintFeedbackType") or "abuse").lower()


def original_message_id(data: dict[str, Any]) -> str | None:
    mail = data.get("mail") or {}
    headers = mail.get("commonHeaders") or {}
    value = headers.get("messageId") if isinstance(headers, dict) else None
    return str(value) if value else None
