"""Inbound messages once read (docs/inbound.md, "Reading mailboxes" and "Actions"): stored once
per (mailbox, folder, uidvalidity, uid), then classified and acted on once each.

Acting is one transaction per ACT_CHUNK messages (one at a time when one of them fails): the
rows are locked in `received`, each parsed once and classified (deliverability.inbound), then
`deliverability.signals.inbound_classified` is sent for each, with the whole chunk (`chunk`:
its `Classified` items, so a receiver may look up all of them at once), and the apps that own
the data act (campaigns: suppressions, enrollments, rollups), the complaint is counted against
the sending mailbox and domain, and the row moves to `processed`. A poller killed half-way
leaves rows in `received`; the next run acts on them, and on nothing twice.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message
from email.utils import getaddresses
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deliverability.inbound import Classification, Kind, classify_parsed, parse_bytes
from deliverability.models import InboundMessage, InboundState, Mailbox, SendingDomain
from deliverability.signals import inbound_classified
from penguinmails import batching, states
from tenants.models import Tenant

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
ACT_CHUNK = 50  # messages acted on per transaction
_ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")


@dataclass(frozen=True)
class Headers:
    """What matching needs from the message's own headers."""

    delivered_to: list[str]
    in_reply_to: str
    references: str
    message_id: str


def headers_of(message: Message) -> Headers:
    """The matching headers of the message classify parsed (one parse per message)."""

    def text(name: str) -> str:
        return str(message.get(name, "") or "")[:20_000]

    found: list[str] = []
    for name in _ADDRESS_HEADERS:
        values = [str(v)[:2000] for v in (message.get_all(name) or [])]
        for _, address in getaddresses(values):
            address = address.strip().lower()
            if "@" in address and address not in found:
                found.append(address)
    return Headers(found[:20], text("In-Reply-To"), text("References"), text("Message-ID"))


@dataclass(frozen=True)
class Classified:
    """A locked stored message with its verdict and headers (a chunk is a list of these)."""

    inbound: InboundMessage
    classification: Classification
    headers: Headers


def classified(row: InboundMessage) -> Classified:
    raw = zlib.decompress(bytes(row.raw)) if row.raw is not None else b""
    parsed = parse_bytes(raw)
    verdict = classify_parsed(parsed)
    return Classified(row, verdict, headers_of(parsed.message))


def store(mailbox: Mailbox, folder: str, uidvalidity: int, fetched: Iterable[tuple[int, bytes]]):
    """Store fetched (uid, raw) messages, each once; returns how many were new. Runs in the
    caller's transaction (with the folder's cursor move)."""
    rows = [
        InboundMessage(
            mailbox=mailbox,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            raw=zlib.compress(raw, 6),
            raw_size=len(raw),
            kind="",
        )
        for uid, raw in fetched
    ]
    before = InboundMessage.objects.filter(mailbox=mailbox).count()
    InboundMessage.objects.bulk_create(rows, ignore_conflicts=True)
    return InboundMessage.objects.filter(mailbox=mailbox).count() - before


def process_pending(tenant: Tenant, mailbox: Mailbox, *, limit: int = 10_000) -> int:
    """Act on the mailbox's stored messages not yet acted on, oldest first; returns how many."""
    pending = InboundMessage.objects.filter(mailbox=mailbox, status=InboundState.RECEIVED)
    ids = list(pending.order_by("id").values_list("id", flat=True)[:limit])
    return sum(
        _process_chunk(tenant, ids[i : i + ACT_CHUNK]) for i in range(0, len(ids), ACT_CHUNK)
    )


def _process_chunk(tenant: Tenant, ids: list[int]) -> int:
    """Act on up to ACT_CHUNK messages in one transaction: one SELECT locks them all, all are
    classified, then each is acted on in turn (with the chunk: campaigns matches and locks what
    they name at once), the chunk's rollup increments and the rows' move to `processed` are
    written once at its end (penguinmails.batching), one commit for all. Optimistic: no
    savepoint per message (two statements each). A message that raises rolls the whole chunk
    back, and the chunk is acted on again one message at a time (process_one: a transaction
    each, the bad one counted as a failed attempt), so nothing is acted on twice or lost."""
    try:
        with transaction.atomic():
            rows = list(
                InboundMessage.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids, status=InboundState.RECEIVED)
                .order_by("id")
            )
            chunk = [classified(row) for row in rows]
            with batching.batch():
                for item in chunk:
                    _act(tenant, item, chunk)
            return len(rows)
    except Exception:  # noqa: BLE001 - a bad message must not stop the mailbox: one at a time
        log.warning(
            "inbound messages %s..%s: a message failed, acting one at a time",
            ids[0],
            ids[-1],
            exc_info=True,
        )
        return sum(1 for pk in ids if process_one(tenant, pk))


def process_one(tenant: Tenant, inbound_id: int) -> bool:
    """Classify and act on one stored message, once. False when another run has it or had it."""
    try:
        with transaction.atomic():
            row = (
                InboundMessage.objects.select_for_update(skip_locked=True)
                .filter(pk=inbound_id, status=InboundState.RECEIVED)
                .first()
            )
            if row is None:
                return False
            item = classified(row)
            _act(tenant, item, [item])
            return True
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the mailbox
        log.exception("inbound message %s: acting failed", inbound_id)
        _failed_attempt(inbound_id, exc)
        return False


def _act(tenant: Tenant, item: Classified, chunk: list[Classified]) -> None:
    """Send the verdict to the apps that act (with the whole chunk, so they can look up all of
    its messages at once) and record what they did."""
    row, verdict, headers = item.inbound, item.classification, item.headers
    results: list[Any] = [
        r
        for _, r in inbound_classified.send(
            sender=InboundMessage,
            tenant=tenant,
            inbound=row,
            classification=verdict,
            headers=headers,
            chunk=chunk,
        )
        if r
    ]
    outcome: dict[str, Any] = dict(results[0]) if results else {}
    if verdict.kind == Kind.COMPLAINT and outcome.get("message_id"):
        record_complaint(int(outcome.get("mailbox_id") or row.mailbox_id))
    first = verdict.recipients[0] if verdict.recipients else None
    fields = dict(
        **_verdict_fields(verdict, headers),
        status_code=(first.status or "")[:16] if first else "",
        bounce_class=(first.klass or "")[:8] if first else "",
        bounce_reason=(first.reason or "")[:64] if first else "",
        matched_message_id=outcome.get("message_id"),
        action=str(outcome.get("action", "nothing to do"))[:200],
        processed_at=timezone.now(),
    )
    # In a chunk, the rows are marked processed together at its end (one UPDATE); alone, now.
    if not batching.defer(_mark_processed, [(row, fields)]):
        _mark_processed([(row, fields)])


def _mark_processed(moves: list[tuple[InboundMessage, dict[str, Any]]]) -> None:
    states.transition_each(moves, InboundState.PROCESSED)


def _verdict_fields(verdict: Classification, headers: Headers) -> dict[str, Any]:
    return {
        "kind": str(verdict.kind)[:16],
        "recipients": [r.as_json() for r in verdict.recipients],
        "message_id": headers.message_id[:500],
        "delivered_to": ", ".join(headers.delivered_to)[:500],
    }


def _failed_attempt(inbound_id: int, exc: Exception) -> None:
    with transaction.atomic():
        row = InboundMessage.objects.select_for_update().filter(pk=inbound_id).first()
        if row is None or row.status != InboundState.RECEIVED:
            return
        row.attempts += 1
        row.save(update_fields=["attempts"])
        if row.attempts >= MAX_ATTEMPTS:
            states.transition(
                row,
                InboundState.FAILED,
                reason=f"{type(exc).__name__}: {exc}"[:500],
                action=f"failed: {type(exc).__name__}"[:200],
            )


def record_complaint(mailbox_id: int) -> None:
    """A spam complaint about mail from this mailbox counts against it and its domain."""
    mailbox = Mailbox.objects.filter(pk=mailbox_id).values_list("address", flat=True).first()
    if mailbox is None:
        return
    Mailbox.objects.filter(pk=mailbox_id).update(complaints=F("complaints") + 1)
    domain = mailbox.rsplit("@", 1)[-1]
    SendingDomain.objects.filter(name=domain).update(complaints=F("complaints") + 1)


def prune_raw(mailbox: Mailbox) -> int:
    """Clear the raw bytes of the mailbox's acted-on messages older than the retention (30 days
    by default); the classification and action stay. Returns how many were cleared."""
    cutoff = timezone.now() - timedelta(days=settings.INBOUND_RAW_RETENTION_DAYS)
    return (
        InboundMessage.objects.filter(mailbox=mailbox, received_at__lt=cutoff, raw__isnull=False)
        .exclude(status=InboundState.RECEIVED)
        .update(raw=None)
    )
