"""Interceptors of fetched inbound mail (docs/inbound.md, "Reading mailboxes"; docs/warmup.md,
"Receiving side").

A higher app that owns some mail (warm-up) registers an interceptor at start-up
(`register_interceptor` in its AppConfig.ready()); deliverability never imports it. The poller
(imap_reader) offers each fetched message to the interceptors before storing it, inside the
transaction that stores the chunk and moves the folder's cursor: an interceptor that takes a
message records what it must do in that same transaction (a job, say), so a poller killed
before the commit fetches the message again and one killed after it never sees it twice. A
message taken is never stored as an InboundMessage, never classified, never shown.

An interceptor must be cheap for mail that is not its own, must not touch the IMAP connection
(the folder is EXAMINEd, read-only), and must not raise: an exception is logged and the message
is left to the poller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction

from deliverability.models import Mailbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """One fetched message and where it was found."""

    mailbox: Mailbox
    folder: str  # "INBOX" or the junk folder's name
    uidvalidity: int
    uid: int
    raw: bytes

    @property
    def in_junk(self) -> bool:
        return self.folder.upper() != "INBOX"


Interceptor = Callable[[Fetched], bool]  # True: the message is taken, not stored
Prefilter = Callable[[bytes], bool]  # False: surely not the interceptor's (no database, no writes)

_interceptors: list[tuple[Interceptor, Prefilter | None]] = []


def register_interceptor(interceptor: Interceptor, *, wants: Prefilter | None = None) -> None:
    """Offer every fetched message to `interceptor` (once per process; repeats are ignored).
    `wants`, given, is asked first with the raw bytes: a cheap test without the database (a
    header pattern), so the messages it turns down cost no savepoint."""
    if all(known is not interceptor for known, _ in _interceptors):
        _interceptors.append((interceptor, wants))


def unregister_interceptor(interceptor: Interceptor) -> None:
    _interceptors[:] = [(i, w) for i, w in _interceptors if i is not interceptor]


def _taken(message: Fetched) -> bool:
    for interceptor, wants in _interceptors:
        if wants is not None and not wants(message.raw):
            continue
        try:
            with transaction.atomic():  # a savepoint: a failing interceptor leaves no writes
                if interceptor(message):
                    return True
        except Exception:  # noqa: BLE001 - an interceptor's bug must not stop the poller
            log.exception("inbound interceptor %r failed on UID %s", interceptor, message.uid)
    return False


def intercept(
    mailbox: Mailbox, folder: str, uidvalidity: int, fetched: Iterable[tuple[int, bytes]]
) -> list[tuple[int, bytes]]:
    """The fetched (uid, raw) messages no interceptor took, in order."""
    if not _interceptors:
        return list(fetched)
    return [
        (uid, raw)
        for uid, raw in fetched
        if not _taken(Fetched(mailbox, folder, uidvalidity, uid, raw))
    ]
