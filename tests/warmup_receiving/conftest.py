"""Fixtures for warm-up's receiving side: one real Dovecot (tests/dovecot.py) holding a pool
mailbox of each of two tenants (acme sends, globex receives, and the other way for replies), the
sandbox SMTP server delivering into it (penguinmails/sandbox/delivery.py, junk filing included),
both mailboxes in the pool through warm-up's own opt-in, and helpers that run the poller and the
jobs it leaves with the worker's runner."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import InboundMessage, Mailbox, MailboxKind, MailboxStatus, Security
from deliverability.services.imap_reader import PollReport, poll_mailbox
from deliverability.services.mailboxes.lifecycle import sync_poll_index
from penguinmails.models import Job, WarmupPoolMember
from penguinmails.queue import runner
from penguinmails.sandbox.delivery import Delivery
from penguinmails.sandbox.imap import SandboxImap
from penguinmails.sandbox.rules import RuleStore
from penguinmails.sandbox.smtp import start_sandbox_smtp
from tenants.models import Tenant
from tests.conftest import Cast
from tests.dovecot import running_dovecot
from tests.sending.conftest import PASSWORD, USER
from warmup import tag
from warmup.models import WarmupMessage, WarmupMessageStatus
from warmup.services import pool as pool_svc

SENDER = "ann@mail.acme.test"  # acme's pool mailbox
RECEIVER = "bob@mail.globex.test"  # globex's pool mailbox
IMAP_PASSWORDS = {SENDER: "imap-password-ann", RECEIVER: "imap-password-bob"}
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[SandboxImap]:
    with running_dovecot(IMAP_PASSWORDS) as server:
        yield server


@dataclass
class Side:
    tenant: Tenant
    mailbox: Mailbox
    member: WarmupPoolMember

    def poll(self) -> PollReport:
        return poll_mailbox(self.tenant, self.mailbox.pk)

    def inbound_count(self) -> int:
        with schema_context(self.tenant.schema_name):
            return InboundMessage.objects.filter(mailbox=self.mailbox).count()

    def messages(self, **filters: object) -> list[WarmupMessage]:
        with schema_context(self.tenant.schema_name):
            return list(WarmupMessage.objects.filter(mailbox=self.mailbox, **filters))


@dataclass
class Pool:
    cast: Cast
    imap: SandboxImap
    smtp_port: int
    ann: Side  # acme
    bob: Side  # globex

    def folder(self, address: str, folder: str) -> list[tuple[int, set[str], bytes]]:
        """(uid, flags, header block) of every message in the folder, read with EXAMINE."""
        client = self.imap.connect(address)
        try:
            client.select(folder, readonly=True)
            typ, data = client.uid("SEARCH", "ALL")
            uids = [int(u) for u in (data[0] or b"").split()]
            found = []
            for uid in uids:
                _, fetched = client.uid("FETCH", str(uid), "(FLAGS BODY.PEEK[HEADER])")
                head = fetched[0]
                assert isinstance(head, tuple)
                flags = _FLAGS.search(head[0])
                names = (flags.group(1) if flags else b"").decode().split()
                found.append((uid, set(names) - {"\\Recent"}, head[1]))  # per session
            return found
        finally:
            client.logout()

    def append(
        self, address: str, raw: bytes, folder: str, *, when: datetime | None = None
    ) -> None:
        """APPEND as a receiving server would deliver (unread), with an internal date."""
        client = self.imap.connect(address)
        try:
            date = imaplib.Time2Internaldate((when or timezone.now()).timestamp())
            typ, data = client.append(folder, "", date, re.sub(rb"\r?\n", b"\r\n", raw))
            assert typ == "OK", data
        finally:
            client.logout()


def _side(tenant: Tenant, address: str, smtp_port: int, imap: SandboxImap, reply_rate: int) -> Side:
    with schema_context(tenant.schema_name):
        mailbox = Mailbox.objects.create(
            address=address,
            display_name=address.partition("@")[0].capitalize(),
            kind=MailboxKind.OTHER,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_security=Security.NONE,
            smtp_username=USER,
            smtp_password=PASSWORD,
            imap_host="127.0.0.1",
            imap_port=imap.port,
            imap_security=Security.NONE,
            imap_username=address,
            imap_password=IMAP_PASSWORDS[address],
            daily_limit=100,
            status=MailboxStatus.ACTIVE,
        )
        sync_poll_index(mailbox)
        pool_svc.opt_in(mailbox, reply_rate=reply_rate)
    member = WarmupPoolMember.objects.get(tenant=tenant, mailbox_id=mailbox.pk)
    return Side(tenant, mailbox, member)


@pytest.fixture
def pool(cast: Cast, dovecot: SandboxImap, tmp_path: Path) -> Iterator[Pool]:
    for address in IMAP_PASSWORDS:
        dovecot.remove_user(address, delete_mail=True)  # fresh folders, new UIDs
    dovecot.add_users(IMAP_PASSWORDS)
    controller = start_sandbox_smtp(
        "127.0.0.1",
        0,
        tmp_path / "maildir",
        user=USER,
        password=PASSWORD,
        delivery=Delivery(dovecot, RuleStore(tmp_path / "rules.json")),
    )
    try:
        port = int(controller.port)
        ann = _side(cast.tenant, SENDER, port, dovecot, reply_rate=100)
        bob = _side(cast.other_tenant, RECEIVER, port, dovecot, reply_rate=100)
        yield Pool(cast, dovecot, port, ann, bob)
    finally:
        controller.stop()


def schedule_message(sender: Side, receiver: Side, *, subject: str = "Quick question") -> str:
    """A warm-up message from `sender` to `receiver`, due now (as warm-up's planner writes
    them); returns its Message-ID."""
    with schema_context(sender.tenant.schema_name):
        message = WarmupMessage.objects.create(
            mailbox=sender.mailbox,
            to_member_id=receiver.member.pk,
            to_address=receiver.mailbox.address,
            message_id=tag.make_message_id(sender.member.pk, sender.mailbox.address.split("@")[1]),
            subject=subject,
            body="Hi Bob,\n\nAre we still on for Thursday?\n\nThanks,\nAnn\n",
            status=WarmupMessageStatus.SCHEDULED,
            scheduled_at=timezone.now(),
        )
    return message.message_id


def jobs(task: str, tenant: Tenant | None = None) -> list[Job]:
    connection.set_schema_to_public()
    rows = Job.objects.filter(task=task, status__in=("queued", "retrying")).order_by("id")
    return list(rows.filter(tenant=tenant) if tenant is not None else rows)


def run_jobs(task: str, tenant: Tenant | None = None) -> int:
    """Run the queued jobs of `task` with the worker's runner; returns how many ran."""
    ran = 0
    for job in jobs(task, tenant):
        runner.run(job.pk, worker_id="test")
        connection.set_schema_to_public()
        job.refresh_from_db()
        assert job.status == "completed", job.last_error
        ran += 1
    return ran


def ordinary(to: str, *, message_id: str | None = None, subject: str = "Lunch?") -> bytes:
    mail = EmailMessage()
    mail["From"] = "Carol <carol@example.com>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = message_id or make_msgid(domain="example.com")
    mail.set_content("Are you free for lunch on Friday?\n")
    return mail.as_bytes()


def tagged(sender: Side, to: str, *, subject: str = "Catching up") -> tuple[str, bytes]:
    """A warm-up message from `sender`'s pool member as it arrives (its tagged Message-ID)."""
    message_id = tag.make_message_id(sender.member.pk, sender.mailbox.address.split("@")[1])
    raw = ordinary(to, message_id=f"<{message_id}>", subject=subject)
    return message_id, raw
