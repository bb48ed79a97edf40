"""Reading mailboxes over IMAP (docs/inbound.md, "Reading mailboxes"; issue 12 item 1).

The beat entry `inbound-poll-due` runs `enqueue_due`: one deduplicated poll job per mailbox due
in the public index (penguinmails.indexes, MailboxPoll), no loop over tenant schemas. A poll job
(`poll_mailbox`) logs in through the outbound connection guard (mailbox_probe.open_imap, the
connection test's code), EXAMINEs (read-only) the inbox and the junk folder (SPECIAL-USE \\Junk,
else a common name), fetches new UIDs with BODY.PEEK[] (never sets \\Seen, never deletes), at
most INBOUND_POLL_BATCH per run, stores them once (inbound_store) and acts on them, then
re-enqueues itself when more remain. Per folder the mailbox keeps {uidvalidity, last_uid}; a
new UIDVALIDITY (or a first read) starts at UIDNEXT - INBOUND_POLL_WINDOW. A failed login flags
the mailbox with the connection test's step-named reason and backs off exponentially.
"""

from __future__ import annotations

import imaplib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.inbound.parse import MAX_BYTES
from deliverability.models import Mailbox, MailboxStatus
from deliverability.services import inbound_hooks, inbound_store
from deliverability.services.mailbox_probe import ProbeResult, StepFailed, close_imap, open_imap
from deliverability.services.mailboxes.credentials import endpoints
from deliverability.services.mailboxes.lifecycle import POLLED_STATUSES, transition_mailbox
from penguinmails import indexes
from penguinmails.alerts import raise_alert, resolve_alert
from penguinmails.crypto import SecretUnavailable
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from tenants.models import Tenant

log = logging.getLogger(__name__)
# The alert engine's rule for a mailbox the poller cannot log in to (resolved at the next login).
LOGIN_ALERT = "mailbox.login_failing"

POLL_TASK = "inbound.poll"
POLL_DUE_TASK = "inbound.poll_due"
JUNK_NAMES = (
    "Junk",
    "Spam",
    "[Gmail]/Spam",
    "Junk E-mail",
    "Junk Email",
    "INBOX.Junk",
    "INBOX.Spam",
)
FETCH_CHUNK = 50
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')
_UID = re.compile(rb"\bUID (\d+)")


@dataclass
class PollReport:
    """What one poll run did (the `inbound poll` command prints it)."""

    mailbox: str = ""
    folders: tuple[str, ...] = ()
    fetched: int = 0
    stored: int = 0
    processed: int = 0
    more: bool = False
    failed: str = ""  # the step-named reason of a failed login
    skipped: str = ""  # why nothing was read
    error: str = ""  # an IMAP error mid-read (what was stored is kept)


def poll_key(tenant_id: int, mailbox_id: int) -> str:
    return f"inbound-poll:{tenant_id}:{mailbox_id}"


def enqueue_due(*, now: datetime | None = None) -> int:
    """One poll job per mailbox due in the public index (none while one is live); returns how
    many mailboxes were due."""
    due = indexes.due_mailboxes(now or timezone.now())
    if not due:
        return 0
    tenants = {t.pk: t for t in Tenant.objects.filter(pk__in={t for t, _ in due})}
    with transaction.atomic():
        enqueue_many(
            JobSpec(POLL_TASK, {"mailbox_id": m}, tenants[t], idempotency_key=poll_key(t, m))
            for t, m in due
            if t in tenants
        )
    return len(due)


@contextmanager
def _poll_lock(tenant_id: int, mailbox_id: int) -> Iterator[bool]:
    """One poller per mailbox at a time (a session advisory lock; a killed worker's connection
    takes its lock with it)."""
    key = f"{poll_key(tenant_id, mailbox_id)}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def poll_mailbox(tenant: Tenant, mailbox_id: int, *, batch: int | None = None) -> PollReport:
    """Read the mailbox's new messages (at most `batch`, default INBOUND_POLL_BATCH), store and
    act on them; re-enqueue itself when more remain."""
    report = PollReport()
    with schema_context(tenant.schema_name), _poll_lock(tenant.pk, mailbox_id) as got:
        if not got:
            report.skipped = "another poll of this mailbox is running"
            return report
        mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
        if mailbox is None or mailbox.status not in POLLED_STATUSES or not mailbox.imap_host:
            indexes.unindex_mailbox(tenant.pk, mailbox_id)
            report.skipped = "not a mailbox to read"
            return report
        report.mailbox = mailbox.address
        _read(tenant, mailbox, batch or settings.INBOUND_POLL_BATCH, report)
        if report.failed or report.skipped:
            return report
        report.processed = inbound_store.process_pending(tenant, mailbox)
        inbound_store.prune_raw(mailbox)
        Mailbox.objects.filter(pk=mailbox.pk).update(last_polled_at=timezone.now())
        indexes.set_next_poll(tenant.pk, mailbox.pk, at=_after(settings.INBOUND_POLL_INTERVAL))
        if report.more:
            enqueue(POLL_TASK, {"mailbox_id": mailbox.pk}, tenant=tenant)
    return report


def _read(tenant: Tenant, mailbox: Mailbox, budget: int, report: PollReport) -> None:
    try:
        _, imap = endpoints(mailbox)
    except SecretUnavailable:
        report.skipped = "its password cannot be decrypted (marked unusable)"
        return
    if imap is None:
        report.skipped = "no IMAP server configured"
        return
    try:
        client = open_imap(imap, timeout=30.0)
    except StepFailed as failed:
        report.failed = _login_failed(tenant, mailbox, failed.result)
        return
    resolve_alert(LOGIN_ALERT, _alert_subject(tenant, mailbox), note="IMAP login succeeded")
    try:
        report.folders = tuple(_folders(client))
        for folder in report.folders:
            budget = _read_folder(client, mailbox, folder, budget, report)
    except (imaplib.IMAP4.error, OSError) as exc:
        report.error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("inbound poll of %s stopped: %s", mailbox.address, report.error)
    finally:
        close_imap(client)


def _after(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def _login_failed(tenant: Tenant, mailbox: Mailbox, result: ProbeResult) -> str:
    """Flag the mailbox as the connection test does and back off: the next poll waits
    INBOUND_POLL_INTERVAL x 2^failures, at most INBOUND_POLL_BACKOFF_MAX."""
    reason = f"{result.protocol.upper()} {result.step} failed: {result.message}"
    failures = indexes.poll_failures(tenant.pk, mailbox.pk) + 1
    delay = min(settings.INBOUND_POLL_INTERVAL * 2**failures, settings.INBOUND_POLL_BACKOFF_MAX)
    with transaction.atomic():
        locked = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
        locked.last_error = f"{result.protocol.upper()}: {result.message}"[:500]
        locked.last_error_step = str(result.step)
        locked.save(update_fields=["last_error", "last_error_step"])
        if locked.status == MailboxStatus.ACTIVE:
            transition_mailbox(locked, MailboxStatus.FAILING, reason=reason)
        indexes.set_next_poll(tenant.pk, mailbox.pk, at=_after(delay), failures=failures)
        raise_alert(
            LOGIN_ALERT,
            _alert_subject(tenant, mailbox),
            summary=f"Mailbox {mailbox.address} cannot log in: {reason}",
            detail={"mailbox_id": mailbox.pk, "step": str(result.step), "failures": failures},
            tenant_schema=tenant.schema_name,
        )
    log.warning("inbound poll of %s: %s (retry in %ss)", mailbox.address, reason, delay)
    return reason


def _alert_subject(tenant: Tenant, mailbox: Mailbox) -> str:
    return f"mailbox:{tenant.schema_name}:{mailbox.pk}"


# --- IMAP --------------------------------------------------------------------------------------
def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(name: bytes) -> str:
    text = name.decode("utf-8", "replace").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _folders(client: imaplib.IMAP4) -> list[str]:
    """INBOX and the junk folder: SPECIAL-USE \\Junk first, else a common name."""
    typ, lines = client.list()
    names: dict[str, str] = {}
    junk = None
    for line in lines if typ == "OK" else []:
        found = _LIST_LINE.match(line) if isinstance(line, bytes) else None
        if found is None:
            continue
        name = _unquote(found.group("name"))
        names[name.lower()] = name
        if b"\\junk" in found.group("flags").lower() and junk is None:
            junk = name
    if junk is None:
        junk = next((names[n.lower()] for n in JUNK_NAMES if n.lower() in names), None)
    return ["INBOX"] + ([junk] if junk and junk.upper() != "INBOX" else [])


def _number(client: imaplib.IMAP4, name: str) -> int | None:
    _, data = client.response(name)
    try:
        return int(data[0]) if data and data[0] is not None else None
    except (TypeError, ValueError):
        return None


def _read_folder(
    client: imaplib.IMAP4, mailbox: Mailbox, folder: str, budget: int, report: PollReport
) -> int:
    """Fetch and store the folder's new messages within `budget`; returns what is left of it."""
    typ, _ = client.select(quote(folder), readonly=True)  # EXAMINE: flags never change
    uidvalidity = _number(client, "UIDVALIDITY")
    if typ != "OK" or uidvalidity is None:
        return budget
    uidnext = _number(client, "UIDNEXT") or 1
    last = _cursor(mailbox, folder, uidvalidity, uidnext)
    typ, data = client.uid("SEARCH", f"UID {last + 1}:*")
    uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > last) if typ == "OK" else []
    take = uids[: max(budget, 0)]
    report.more = report.more or len(uids) > len(take)
    for start in range(0, len(take), FETCH_CHUNK):
        chunk = take[start : start + FETCH_CHUNK]
        fetched = _fetch(client, chunk)
        report.fetched += len(fetched)
        with transaction.atomic():
            # Mail another app owns (warm-up) is taken here and never stored (inbound_hooks).
            fetched = inbound_hooks.intercept(mailbox, folder, uidvalidity, fetched)
            report.stored += inbound_store.store(mailbox, folder, uidvalidity, fetched)
            _move_cursor(mailbox, folder, uidvalidity, max(chunk))
    return budget - len(take)


def _fetch(client: imaplib.IMAP4, uids: list[int]) -> list[tuple[int, bytes]]:
    # BODY.PEEK never sets \Seen; a message is read up to the parser's limit, never 20 MB.
    wanted = ",".join(str(u) for u in uids)
    typ, data = client.uid("FETCH", wanted, f"(UID BODY.PEEK[]<0.{MAX_BYTES + 1}>)")
    found: list[tuple[int, bytes]] = []
    for item in data if typ == "OK" else []:
        if isinstance(item, tuple) and len(item) == 2:
            uid = _UID.search(item[0])
            if uid is not None and int(uid.group(1)) in uids:
                found.append((int(uid.group(1)), bytes(item[1])))
    return found


def _cursor(mailbox: Mailbox, folder: str, uidvalidity: int, uidnext: int) -> int:
    """The last UID read in the folder; on a first read or a new UIDVALIDITY (the folder was
    recreated: old UIDs mean nothing) start at UIDNEXT - INBOUND_POLL_WINDOW, recorded at once."""
    state = (mailbox.inbound_cursor or {}).get(folder) or {}
    if state.get("uidvalidity") == uidvalidity:
        return int(state.get("last_uid", 0))
    if state:
        log.info("%s %s: UIDVALIDITY changed, reading from the recent window", mailbox, folder)
    start = max(0, uidnext - 1 - settings.INBOUND_POLL_WINDOW)
    _move_cursor(mailbox, folder, uidvalidity, start)
    return start


def _move_cursor(mailbox: Mailbox, folder: str, uidvalidity: int, last_uid: int) -> None:
    cursor = dict(mailbox.inbound_cursor or {})
    cursor[folder] = {"uidvalidity": uidvalidity, "last_uid": last_uid}
    mailbox.inbound_cursor = cursor
    Mailbox.objects.filter(pk=mailbox.pk).update(inbound_cursor=cursor)
