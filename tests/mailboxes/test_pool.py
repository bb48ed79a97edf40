"""The workers' SMTP pool against the real sandbox SMTP server: connection reuse, the NOOP check
and reconnect after the server dropped us, round robin, and pausing after failures."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from django_tenants.utils import schema_context

from deliverability.models import MailboxStatus
from deliverability.services import mailboxes as svc
from deliverability.smtp_pool import NoMailboxAvailable, SmtpPool
from penguinmails.sandbox.smtp import open_maildir
from tests.conftest import Cast
from tests.domains.conftest import principal
from tests.fakes.imap import FakeImap
from tests.mailboxes.conftest import USER, Smtp, connect, mailbox_in

pytestmark = pytest.mark.django_db(transaction=True)


def message(to: str = "lead@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = "Hello"
    msg.set_content("Hi there")
    return msg


def test_it_reuses_one_connection_for_several_sends(
    cast: Cast, smtp_server: Smtp, imap_server: FakeImap
) -> None:
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    smtp_server.peers.clear()
    with schema_context(cast.tenant.schema_name):
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[box.pk]) as pool:
            results = [pool.send(message(f"lead{n}@example.com")) for n in range(3)]
            assert pool.opened == 1
    assert all(r.ok for r in results)
    assert len(smtp_server.peers) == 1  # the server saw one connection for three messages
    assert len(open_maildir(smtp_server.maildir)) == 3
    stored = mailbox_in(cast.tenant)
    assert stored.sent_today == 3 and stored.last_sent_at is not None


def test_it_checks_with_noop_and_reconnects_after_the_server_dropped_it(
    cast: Cast, smtp_server: Smtp, imap_server: FakeImap
) -> None:
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    smtp_server.peers.clear()
    with schema_context(cast.tenant.schema_name):
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[box.pk]) as pool:
            assert pool.send(message()).ok
            smtp_server.drop_connections()
            second = pool.send(message())
            assert pool.opened == 2
    assert second.ok
    assert len(smtp_server.peers) == 2
    assert mailbox_in(cast.tenant).consecutive_failures == 0


def test_it_takes_mailboxes_in_round_robin_order_skipping_paused_and_full_ones(
    cast: Cast, smtp_server: Smtp, imap_server: FakeImap
) -> None:
    # Three mailboxes on the same server (one login), told apart by their address.
    boxes = [
        connect(cast.tenant, cast.owner, smtp_server, imap_server, address=f"rep{n}@acme-mail.test")
        for n in range(3)
    ]
    ids = [b.pk for b in boxes]
    with schema_context(cast.tenant.schema_name):
        owner = principal(cast.tenant, cast.owner)
        with SmtpPool(tenant=cast.tenant, mailbox_ids=ids) as pool:
            order = [pool.send(message()).mailbox_id for _ in range(4)]
            assert order == [ids[0], ids[1], ids[2], ids[0]]
            svc.pause_mailbox(owner, boxes[1], reason="holiday")
            svc.set_daily_limit(owner, boxes[2], daily_limit=1)  # already sent one today
            assert [pool.send(message()).mailbox_id for _ in range(2)] == [ids[0], ids[0]]
            svc.pause_mailbox(owner, boxes[0], reason="holiday")
            with pytest.raises(NoMailboxAvailable):
                pool.send(message())
    senders = sorted(m["X-Sandbox-Envelope-From"] for m in open_maildir(smtp_server.maildir))
    assert senders.count("<rep0@acme-mail.test>") == 4


def test_it_pauses_a_mailbox_after_consecutive_failures_with_the_reason(
    cast: Cast, smtp_server: Smtp, imap_server: FakeImap
) -> None:
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    smtp_server.stop()  # the server goes away
    with schema_context(cast.tenant.schema_name):
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[box.pk], pause_after=3) as pool:
            results = [pool.send(message(), mailbox=box) for _ in range(3)]
    assert [r.step for r in results] == ["connect"] * 3
    assert [r.paused for r in results] == [False, False, True]
    stored = mailbox_in(cast.tenant, USER)
    assert stored.status == MailboxStatus.PAUSED
    assert "3 sends in a row failed" in stored.paused_reason
    assert "refused the connection" in stored.paused_reason
    with schema_context(cast.tenant.schema_name):
        last = stored.transitions.order_by("-id").first()
    assert last is not None and (last.from_status, last.to_status) == ("active", "paused")
    assert last.actor_email == ""  # the system, not a person
