"""The workers' SMTP pool against the real sandbox SMTP server: connection reuse, the NOOP check
and reconnect after the server dropped us, and pausing after failures."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from django_tenants.utils import schema_context

from deliverability import smtp_pool
from deliverability.models import Mailbox, MailboxStatus
from deliverability.smtp_pool import Delivery, Outcome, SmtpPool
from penguinmails import states
from penguinmails.sandbox.smtp import open_maildir
from tests.conftest import Cast
from tests.mailboxes.conftest import USER, Imap, Smtp, connect, mailbox_in

pytestmark = pytest.mark.django_db(transaction=True)


def raw(to: str = "lead@example.com") -> bytes:
    msg = EmailMessage()
    msg["From"] = USER
    msg["To"] = to
    msg["Subject"] = "Hello"
    msg.set_content("Hi there")
    return msg.as_bytes()


def deliver(pool: SmtpPool, box: Mailbox, to: str = "lead@example.com") -> Delivery:
    return pool.deliver(raw(to), mailbox=box, from_addr=box.address, to_addr=to)


def test_it_reuses_one_connection_for_several_sends(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    smtp_server.peers.clear()
    with schema_context(cast.tenant.schema_name):
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[box.pk]) as pool:
            results = [deliver(pool, box, f"lead{n}@example.com") for n in range(3)]
            assert pool.opened == 1
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    assert len(smtp_server.peers) == 1  # the server saw one connection for three messages
    assert len(open_maildir(smtp_server.maildir)) == 3


@pytest.mark.parametrize("trust_idle_seconds", [0.0, 10.0], ids=["noop", "trusted"])
def test_it_reconnects_after_the_server_dropped_it(
    cast: Cast,
    smtp_server: Smtp,
    imap_server: Imap,
    monkeypatch: pytest.MonkeyPatch,
    trust_idle_seconds: float,
) -> None:
    # 0: the NOOP check finds the connection gone; 10: the send finds it gone before DATA.
    monkeypatch.setattr(smtp_pool, "TRUST_IDLE_SECONDS", trust_idle_seconds)
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    smtp_server.peers.clear()
    with schema_context(cast.tenant.schema_name):
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[box.pk]) as pool:
            assert deliver(pool, box).outcome == Outcome.ACCEPTED
            smtp_server.drop_connections()
            second = deliver(pool, box)
            assert pool.opened == 2
    assert second.outcome == Outcome.ACCEPTED
    assert len(smtp_server.peers) == 2
    assert mailbox_in(cast.tenant).consecutive_failures == 0


def test_it_pauses_a_mailbox_after_consecutive_failures_with_the_reason(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    smtp_server.stop()  # the server goes away
    with schema_context(cast.tenant.schema_name):
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[box.pk], pause_after=3) as pool:
            results = [deliver(pool, box) for _ in range(3)]
    assert [r.outcome for r in results] == [Outcome.DEFERRED] * 3
    assert all(r.response.startswith("connect: ") for r in results)
    stored = mailbox_in(cast.tenant, USER)
    assert stored.status == MailboxStatus.PAUSED
    assert "3 sends in a row failed" in stored.paused_reason
    assert "refused the connection" in stored.paused_reason
    with schema_context(cast.tenant.schema_name):
        last = states.history(stored, limit=1, newest_first=True)[0]
    assert last is not None and (last.from_status, last.to_status) == ("active", "paused")
    assert last.actor == states.SYSTEM  # the system, not a person
