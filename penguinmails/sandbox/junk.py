"""Warm-up mail filed in junk by the sandbox SMTP server (docs/sandbox.md, "Warm-up mail in
junk"; issue 13 item 9).

Real receivers put a share of a young sender's mail in spam. So that spam rescue and the
placement scores move under `make run`, the sandbox files a share of warm-up messages into the
recipient's Dovecot `Junk` folder instead of INBOX: SANDBOX_WARMUP_JUNK_FIRST percent on the
sending pool member's first day in the pool, falling in a straight line to
SANDBOX_WARMUP_JUNK_LAST percent on day SANDBOX_WARMUP_JUNK_DAYS and after. Which messages go to
junk is decided by a hash of the Message-ID, so a message always lands in the same place.

The core does not know what a warm-up message looks like: the warmup app registers a
recogniser at start-up (`register_recogniser`, in WarmupConfig.ready()) that returns the
sending pool member's id for its mail and None for any other. Without one, everything goes to
INBOX, as before.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from penguinmails.models import WarmupPoolMember

logger = logging.getLogger(__name__)

INBOX = "INBOX"
JUNK = "Junk"  # the sandbox Dovecot's \Junk folder (penguinmails/sandbox/imap.py)

Recogniser = Callable[[Message], "int | None"]  # the sending pool member's id, or None
_recognisers: list[Recogniser] = []


def register_recogniser(recogniser: Recogniser) -> None:
    """Tell the sandbox how to recognise warm-up mail (once per process; repeats ignored)."""
    if recogniser not in _recognisers:
        _recognisers.append(recogniser)


def _head(raw: bytes) -> Message | None:
    try:
        return BytesHeaderParser().parsebytes(raw[:65_536].replace(b"\x00", b""))
    except Exception:  # noqa: BLE001 - a hostile header block is just not warm-up mail
        return None


def sender_member(head: Message) -> int | None:
    """The warm-up pool member that sent this message, or None for any other mail."""
    for recogniser in _recognisers:
        try:
            member = recogniser(head)
        except Exception:  # noqa: BLE001 - a recogniser's bug must not stop delivery
            logger.exception("Sandbox: warm-up recogniser %r failed", recogniser)
            continue
        if member is not None:
            return member
    return None


def junk_percent(day: int) -> float:
    """The share (percent) of a pool member's warm-up mail filed in junk on its `day` in the
    pool (day 1 is its first 24 hours)."""
    first = float(settings.SANDBOX_WARMUP_JUNK_FIRST)
    last = float(settings.SANDBOX_WARMUP_JUNK_LAST)
    days = max(int(settings.SANDBOX_WARMUP_JUNK_DAYS), 2)
    if day >= days:
        return last
    return first + (last - first) * (max(day, 1) - 1) / (days - 1)


def _joined_at(member_id: int) -> datetime | None:
    try:
        return (
            WarmupPoolMember.objects.filter(pk=member_id)
            .values_list("joined_at", flat=True)
            .first()
        )
    except DatabaseError:
        logger.exception("Sandbox: the warm-up pool could not be read; filing in INBOX")
        return None
    finally:
        # The SMTP server delivers from an executor thread: its connection is closed here so
        # no idle session outlives the delivery (the main thread's is the caller's business).
        if threading.current_thread() is not threading.main_thread():
            connection.close()


def folder_for(raw: bytes, *, now: datetime | None = None) -> str:
    """`Junk` for the share of warm-up mail the sender's pool age says, else `INBOX`."""
    head = _head(raw) if _recognisers else None
    member = sender_member(head) if head is not None else None
    if head is None or member is None:
        return INBOX
    joined = _joined_at(member)
    if joined is None:
        return INBOX
    day = int(((now or timezone.now()) - joined).total_seconds() // 86_400) + 1
    message_id = str(head.get("Message-ID", "") or "").strip().encode("utf-8", "replace")
    digest = hashlib.sha256(b"sandbox-junk:" + message_id).digest()
    pick = int.from_bytes(digest[:8], "big") / 2**64 * 100
    return JUNK if pick < junk_percent(day) else INBOX


__all__ = ["INBOX", "JUNK", "folder_for", "junk_percent", "register_recogniser", "sender_member"]
