"""Warm-up's receiving side over IMAP (docs/warmup.md, "Receiving side"; issue 13 item 3).

1. **Kept out.** `intercept` is registered with the inbound poller (deliverability's
   inbound_hooks, from WarmupConfig.ready()). A fetched message whose Message-ID, In-Reply-To
   or References carries a pool tag with a valid signature (warmup.tag) is never stored as an
   InboundMessage, so it is never classified, never in the unified inbox or the campaign
   statistics. A forged tag is ordinary mail. For a message with its own tagged Message-ID the
   interceptor enqueues one `warmup.receive` job in the receiving tenant, in the poller's chunk
   transaction (with the cursor move): a poller killed before the commit fetches it again, one
   killed after it never sees it twice.
2. **Acted on.** `receive` (that job) opens its own connection the way the poller does
   (mailbox_probe.open_imap: netguard vets the address), finds the message by folder,
   UIDVALIDITY and UID and checks that UID still holds that Message-ID (else looks it up by
   Message-ID), and touches that UID only: in junk it reports spam placement to the sender,
   then moves it to INBOX (UID MOVE, RFC 6851; else UID COPY + \\Deleted + UID EXPUNGE of that
   UID, RFC 4315); in the inbox it reports inbox placement. Then \\Seen, sometimes \\Flagged,
   and a reply at the plan's reply rate (services.receiving). A reply to what this mailbox sent
   sets replied_at and is not answered again. Every step is idempotent, so a retried job acts
   once.
3. **Cleaned.** `cleanup` deletes the mailbox's tagged messages older than WARMUP_CLEANUP_DAYS
   from INBOX and the junk folder: SEARCH narrows, each candidate's Message-ID is checked
   against the tag's signature, then \\Deleted + UID EXPUNGE of those UIDs only.
"""

from __future__ import annotations

import imaplib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.parser import BytesHeaderParser
from typing import cast

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from deliverability.models import Mailbox
from deliverability.services.imap_reader import quote
from deliverability.services.inbound_hooks import Fetched, register_interceptor
from deliverability.services.mailbox_probe import StepFailed, close_imap, open_imap
from deliverability.services.mailboxes import endpoints
from penguinmails.crypto import SecretUnavailable
from penguinmails.models import WarmupPoolMember
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from penguinmails.sandbox.junk import register_recogniser
from tenants.db import TenantConnection
from tenants.models import Tenant
from warmup import tag
from warmup.models import Placement
from warmup.services import receiving as service

log = logging.getLogger(__name__)

INBOX = "INBOX"
# A pool tag anywhere in the header block (w<member>.<16 hex>.<16 base32>@): a cheap test that
# lets ordinary mail through without parsing it; the signature is checked after.
_TAGGED = re.compile(rb"\bw\d{1,20}\.[0-9a-f]{16}\.[a-z2-7]{16}@", re.IGNORECASE)
_HEAD_BYTES = 65_536
_UID = re.compile(rb"\bUID (\d+)")
_COPYUID = re.compile(rb"(\d+) (\S+) (\S+)")


class ReceiveFailed(Exception):
    """The mailbox could not be reached for now (the job retries it)."""


# --- 1. the poller's interceptor ---------------------------------------------------------------
def _head(raw: bytes) -> Message:
    return BytesHeaderParser().parsebytes(raw[:_HEAD_BYTES].replace(b"\x00", b""))


def _tenant_here() -> Tenant:
    schema = cast(TenantConnection, connection).schema_name
    return Tenant.objects.get(schema_name=schema)


def receive_key(tenant_id: int, mailbox_id: int, message_id: str) -> str:
    return f"warmup-receive:{tenant_id}:{mailbox_id}:{message_id}"[:255]


def looks_tagged(raw: bytes) -> bool:
    """The poller's cheap first test (no database): a warm-up tag's shape in the header."""
    head_end = raw.find(b"\r\n\r\n")
    header = raw[: head_end if head_end > 0 else _HEAD_BYTES]
    return bool(_TAGGED.search(header[:_HEAD_BYTES]))


def intercept(fetched: Fetched) -> bool:
    """The inbound poller's hook: True (taken, never stored) for warm-up mail."""
    if not looks_tagged(fetched.raw):
        return False
    head = _head(fetched.raw)
    if tag.find(head) is None:
        return False  # a forged or foreign tag: ordinary mail
    own = tag.parse(str(head.get("Message-ID", "") or ""))
    if own is not None:
        tenant = _tenant_here()
        payload = {
            "mailbox_id": fetched.mailbox.pk,
            "folder": fetched.folder,
            "uidvalidity": fetched.uidvalidity,
            "uid": fetched.uid,
            "message_id": own.message_id,
        }
        enqueue(
            service.RECEIVE_TASK,
            payload,
            tenant=tenant,
            priority=service.PRIORITY,
            idempotency_key=receive_key(tenant.pk, fetched.mailbox.pk, own.message_id),
        )
    return True


def _recognise_sender(head: Message) -> int | None:
    """For the sandbox's junk filing: the sending member of a message with a tagged own
    Message-ID."""
    own = tag.parse(str(head.get("Message-ID", "") or ""))
    return own.member_id if own is not None else None


def connect() -> None:
    """Register the poller's interceptor and the sandbox's recogniser (WarmupConfig.ready())."""
    register_interceptor(intercept, wants=looks_tagged)
    register_recogniser(_recognise_sender)


# --- IMAP helpers ------------------------------------------------------------------------------
def _capabilities(client: imaplib.IMAP4) -> frozenset[str]:
    # After LOGIN: servers (Dovecot) announce MOVE and UIDPLUS only once logged in.
    typ, data = client.capability()
    words = b" ".join(d for d in data if isinstance(d, bytes)) if typ == "OK" else b""
    return frozenset(w.upper() for w in words.decode(errors="replace").split())


def _select(client: imaplib.IMAP4, folder: str) -> int | None:
    """SELECT (read-write) the folder; its UIDVALIDITY, or None when it cannot be opened."""
    typ, _ = client.select(quote(folder))
    if typ != "OK":
        return None
    _, data = client.response("UIDVALIDITY")
    try:
        return int(data[0]) if data and data[0] is not None else None
    except (TypeError, ValueError):
        return None


def _heads(client: imaplib.IMAP4, uids: list[int]) -> dict[int, Message]:
    """The threading headers of these UIDs (never sets \\Seen)."""
    if not uids:
        return {}
    wanted = ",".join(str(u) for u in uids)
    fields = "(MESSAGE-ID IN-REPLY-TO REFERENCES SUBJECT FROM)"
    typ, data = client.uid("FETCH", wanted, f"(UID BODY.PEEK[HEADER.FIELDS {fields}])")
    found: dict[int, Message] = {}
    for item in data if typ == "OK" else []:
        if isinstance(item, tuple) and len(item) == 2:
            uid = _UID.search(item[0])
            if uid is not None and int(uid.group(1)) in uids:
                found[int(uid.group(1))] = _head(bytes(item[1]))
    return found


def _message_id(head: Message | None) -> str:
    return str(head.get("Message-ID", "") or "").strip().strip("<>").strip() if head else ""


def _search_message_id(client: imaplib.IMAP4, message_id: str) -> list[int]:
    typ, data = client.uid("SEARCH", "HEADER", "Message-ID", quote(f"<{message_id}>"))
    return [int(u) for u in (data[0] or b"").split()] if typ == "OK" and data else []


@dataclass
class Found:
    folder: str
    uid: int
    head: Message


def _locate(
    client: imaplib.IMAP4, folder: str, uidvalidity: int, uid: int, message_id: str
) -> Found | None:
    """Select the folder holding the message and return where it is: the UID the poller saw
    when the folder is the same (UIDVALIDITY) and the UID still holds that Message-ID, else a
    search by Message-ID in that folder, then in INBOX (a retried job finds it moved)."""
    for name in dict.fromkeys([folder, INBOX]):
        validity = _select(client, name)
        if validity is None:
            continue
        candidates = [uid] if name == folder and validity == uidvalidity else []
        for attempt in (candidates, None):
            uids = attempt if attempt is not None else _search_message_id(client, message_id)
            for found_uid, head in _heads(client, uids).items():
                if _message_id(head) == message_id:
                    return Found(name, found_uid, head)
    return None


def _move_to_inbox(client: imaplib.IMAP4, caps: frozenset[str], uid: int, message_id: str) -> int:
    """Move one UID from the selected (junk) folder to INBOX; its UID there (INBOX is selected
    afterwards). Raises ReceiveFailed when the server refuses."""
    client.response("COPYUID")  # forget a stale answer
    if "MOVE" in caps:
        typ, data = client.uid("MOVE", str(uid), INBOX)
    else:
        typ, data = client.uid("COPY", str(uid), INBOX)
        if typ == "OK" and "UIDPLUS" in caps:
            client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
            client.uid("EXPUNGE", str(uid))  # that UID only (a bare EXPUNGE takes all \Deleted)
        elif typ == "OK":
            log.warning("warm-up rescue of %s: no UIDPLUS, the copy in junk stays", message_id)
    if typ != "OK":
        raise ReceiveFailed(f"moving UID {uid} to INBOX was refused: {data!r}"[:300])
    _, codes = client.response("COPYUID")
    copied = _COPYUID.match(codes[-1]) if codes and isinstance(codes[-1], bytes) else None
    _select(client, INBOX)
    if copied is not None and copied.group(3).isdigit():
        new_uid = int(copied.group(3))
        if _message_id(_heads(client, [new_uid]).get(new_uid)) == message_id:
            return new_uid
    for new_uid in _search_message_id(client, message_id):
        return new_uid
    raise ReceiveFailed(f"{message_id} moved to INBOX but not found there")


def _open(mailbox: Mailbox) -> imaplib.IMAP4:
    try:
        _, imap = endpoints(mailbox)
    except SecretUnavailable as exc:
        raise ReceiveFailed(exc.message) from exc
    if imap is None:
        raise ReceiveFailed(f"{mailbox.address} has no IMAP server")
    try:
        return open_imap(imap, timeout=30.0)
    except StepFailed as failed:
        raise ReceiveFailed(f"IMAP {failed.result.step}: {failed.result.message}") from failed


# --- 2. the actions ----------------------------------------------------------------------------
@dataclass
class ReceiveReport:
    """What one `warmup.receive` job did."""

    found: str = ""  # the folder the message was in ("" when it is gone)
    placement: str = ""
    moved_to_uid: int | None = None
    flags: str = ""
    reply: str = ""  # the reply's Message-ID when one was written
    replied_to: str = ""  # what of ours it answers, when it is a reply
    notes: list[str] = field(default_factory=list)


def receive(
    tenant: Tenant,
    mailbox_id: int,
    *,
    folder: str,
    uidvalidity: int,
    uid: int,
    message_id: str,
    now: datetime | None = None,
) -> ReceiveReport:
    """Act on one warm-up message the poller found in `mailbox_id` (in the tenant's schema)."""
    report = ReceiveReport()
    sent = tag.parse(message_id)
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if sent is None or mailbox is None:
        report.notes.append("not a warm-up message or no such mailbox")
        return report
    now = now or timezone.now()
    member = service.member_of(tenant.pk, mailbox.pk)
    client = _open(mailbox)
    try:
        caps = _capabilities(client)
        found = _locate(client, folder, uidvalidity, uid, message_id)
        if found is None:
            report.notes.append("no longer in the mailbox")
            return report
        report.found = found.folder
        _act(client, caps, mailbox, member.pk if member else None, sent, found, now, report)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ReceiveFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        close_imap(client)
    return report


def _act(
    client: imaplib.IMAP4,
    caps: frozenset[str],
    mailbox: Mailbox,
    member_id: int | None,
    sent: tag.WarmupTag,
    found: Found,
    now: datetime,
    report: ReceiveReport,
) -> None:
    in_junk = found.folder.upper() != INBOX
    placement = Placement.SPAM if in_junk else Placement.INBOX
    if member_id is not None and sent.member_id != member_id:
        # Reported before the move: a job killed after the move finds the message in INBOX,
        # and spam still wins over the inbox sighting at the sender's.
        service.report_placement(sent, placement, by_member_id=member_id, at=now)
        report.placement = str(placement)
    uid = found.uid
    if in_junk:
        uid = report.moved_to_uid = _move_to_inbox(client, caps, uid, sent.message_id)
    report.flags = r"(\Seen \Flagged)" if service.is_important(sent.message_id) else r"(\Seen)"
    client.uid("STORE", str(uid), "+FLAGS.SILENT", report.flags)
    answered = tag.parse(str(found.head.get("In-Reply-To", "") or ""))
    if answered is not None:
        # A reply in a warm-up thread: what we sent got an answer; never answered again.
        if member_id is not None and answered.member_id == member_id:
            service.record_replied(mailbox, answered.message_id, at=now)
            report.replied_to = answered.message_id
        return
    if member_id is not None and sent.member_id != member_id:
        subject = str(found.head.get("Subject", "") or "")
        reply = service.schedule_reply(
            mailbox, member_id=member_id, answered=sent, subject=subject, now=now
        )
        report.reply = reply.message_id if reply is not None else ""


# --- 3. cleanup --------------------------------------------------------------------------------
def _folders(mailbox: Mailbox) -> list[str]:
    """INBOX and the folders the poller reads (its cursor names them: the junk folder)."""
    return list(dict.fromkeys([INBOX, *(mailbox.inbound_cursor or {})]))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _imap_date(moment: datetime) -> str:
    # RFC 3501 date-text, English month names whatever the locale.
    return f"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year}"


def enqueue_cleanups() -> int:
    """One cleanup job per mailbox in the pool's public index (the beat's daily entry);
    returns how many."""
    members = list(WarmupPoolMember.objects.values_list("tenant_id", "mailbox_id"))
    tenants = Tenant.objects.in_bulk({t for t, _ in members})
    with transaction.atomic():
        enqueue_many(
            JobSpec(
                service.CLEANUP_TASK,
                {"mailbox_id": mailbox_id},
                tenants[tenant_id],
                service.PRIORITY,
                idempotency_key=f"warmup-cleanup:{tenant_id}:{mailbox_id}",
            )
            for tenant_id, mailbox_id in members
            if tenant_id in tenants
        )
    return len(members)


def cleanup(tenant: Tenant, mailbox_id: int, *, now: datetime | None = None) -> int:
    """Delete the mailbox's warm-up messages received before WARMUP_CLEANUP_DAYS ago (tagged
    Message-ID with a valid signature only, by UID). Returns how many were deleted."""
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if mailbox is None or not mailbox.imap_host:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=settings.WARMUP_CLEANUP_DAYS)
    client = _open(mailbox)
    deleted = 0
    try:
        if "UIDPLUS" not in _capabilities(client):
            log.warning("warm-up cleanup of %s: no UIDPLUS, nothing deleted", mailbox.address)
            return 0
        for folder in _folders(mailbox):
            deleted += _clean_folder(client, folder, cutoff)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ReceiveFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        close_imap(client)
    return deleted


def _clean_folder(client: imaplib.IMAP4, folder: str, cutoff: datetime) -> int:
    if _select(client, folder) is None:
        return 0
    # The server narrows (internal date before the cutoff day, a Message-ID with "<w" in it);
    # the signature decides.
    typ, data = client.uid(
        "SEARCH", "BEFORE", _imap_date(cutoff), "HEADER", "Message-ID", quote("<w")
    )
    candidates = [int(u) for u in (data[0] or b"").split()] if typ == "OK" and data else []
    doomed: list[int] = []
    for start in range(0, len(candidates), 200):
        heads = _heads(client, candidates[start : start + 200])
        doomed += [u for u, head in heads.items() if tag.parse(_message_id(head)) is not None]
    for start in range(0, len(doomed), 200):
        uids = ",".join(str(u) for u in doomed[start : start + 200])
        client.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)")
        client.uid("EXPUNGE", uids)
    return len(doomed)


__all__ = ["ReceiveFailed", "ReceiveReport", "cleanup", "connect", "intercept", "receive"]
