"""Fixtures for the inbound poller: the real sandbox Dovecot (tests/dovecot.py) holding the
sending mailbox, a campaign sent through the real pipeline to the sandbox SMTP server
(tests/sending's helpers), and builders of the mail that comes back (a DSN, a reply, an
out-of-office) addressed the way receivers address it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import Campaign, EmailTemplate, Message
from campaigns.sending import scheduler
from campaigns.sending.verp import bounce_address
from campaigns.services import campaigns as svc
from deliverability.models import Mailbox, Security
from deliverability.services.imap_reader import PollReport, poll_mailbox
from deliverability.services.mailboxes.lifecycle import sync_poll_index
from penguinmails.sandbox.imap import SandboxImap
from tests.conftest import Cast
from tests.dovecot import running_dovecot
from tests.sending.conftest import (
    DOMAIN,
    Sandbox,
    drain,
    make_campaign,
    make_mailbox,
    principal,
    sandbox,  # noqa: F401 - the fixture
)

ADDRESS = f"sender1@{DOMAIN}"
IMAP_PASSWORD = "imap-password-1"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[SandboxImap]:
    with running_dovecot({ADDRESS: IMAP_PASSWORD}) as server:
        yield server


@pytest.fixture
def imap(dovecot: SandboxImap) -> SandboxImap:
    """The session's Dovecot with the sending mailbox emptied (a fresh Maildir, new UIDs)."""
    dovecot.remove_user(ADDRESS, delete_mail=True)
    dovecot.add_user(ADDRESS, IMAP_PASSWORD)
    return dovecot


@dataclass
class World:
    cast: Cast
    imap: SandboxImap
    campaign: Campaign
    mailbox: Mailbox
    messages: list[Message]

    def poll(self, batch: int | None = None) -> PollReport:
        return poll_mailbox(self.cast.tenant, self.mailbox.pk, batch=batch)

    def deliver(self, raw: bytes, folder: str = "INBOX") -> int:
        return self.imap.deliver(ADDRESS, raw, folder)

    def reload(self) -> list[Message]:
        with schema_context(self.cast.tenant.schema_name):
            return [Message.objects.get(pk=m.pk) for m in self.messages]


def sent_world(cast: Cast, sandbox: Sandbox, imap: SandboxImap, *, leads: int = 2) -> World:  # noqa: F811
    """A two-step campaign (step 2 a day later) whose first step went to `leads` leads from a
    mailbox read over IMAP from the Dovecot, indexed for polling."""
    with schema_context(cast.tenant.schema_name):
        mailbox = make_mailbox(
            sandbox,
            1,
            imap_host="127.0.0.1",
            imap_port=imap.port,
            imap_security=Security.NONE,
            imap_username=ADDRESS,
            imap_password=IMAP_PASSWORD,
        )
        sync_poll_index(mailbox)
        campaign = make_campaign(cast, sandbox, leads=leads, steps=1, mailboxes=1)
        template = EmailTemplate.objects.first()
        assert template is not None
        svc.add_step(
            principal(cast),
            campaign,
            delay_amount=1,
            delay_unit="days",
            variants=[(template.pk, 1)],
        )
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        messages = list(Message.objects.filter(campaign=campaign).order_by("pk"))
        mailbox.refresh_from_db()
    assert len(messages) == leads and all(m.status == "sent" for m in messages)
    return World(cast, imap, campaign, mailbox, messages)


def schedule_tomorrow(world: World) -> None:
    with schema_context(world.cast.tenant.schema_name):
        scheduler.schedule_tenant(
            world.cast.tenant, now=timezone.now() + timedelta(days=2), only_due=False
        )


def verp_of(world: World, message: Message) -> str:
    return bounce_address(world.cast.tenant.pk, message.pk, DOMAIN, local="sender1")


def dsn(
    rcpt_to: str,
    failed: str,
    original_id: str | None,
    *,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 User unknown",
) -> bytes:
    """An RFC 3464 delivery status notification, delivered to `rcpt_to` (our bounce address)."""
    boundary = "=_report_boundary"
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\n"
        f"To: {rcpt_to}\n"
        f"Subject: Undelivered Mail Returned to Sender\n"
        f"Message-ID: {make_msgid(domain='mx.example.com')}\n"
        f"Auto-Submitted: auto-replied\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\n'
        f"\n--{boundary}\nContent-Type: text/plain\n\n"
        f"Your message to <{failed}> could not be delivered.\n"
        f"\n--{boundary}\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.example.com\n\n"
        f"Final-Recipient: rfc822; {failed}\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n"
        f"\n--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        f"From: Sam Sender 1 <{ADDRESS}>\nTo: {failed}\nSubject: Hello\n"
        f"Message-ID: {original_id}\n"
        f"\n--{boundary}--\n"
    ).encode()


def arf(rcpt_to: str, complainer: str, original_id: str | None) -> bytes:
    """An RFC 5965 abuse report from a feedback loop, quoting our message's headers."""
    boundary = "=_arf_boundary"
    return (
        "From: Feedback Loop <fbl@isp.example.net>\n"
        f"To: {rcpt_to}\n"
        "Subject: Abuse report\n"
        f"Message-ID: {make_msgid(domain='isp.example.net')}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\n'
        f"\n--{boundary}\nContent-Type: text/plain\n\nThis is an abuse report.\n"
        f"\n--{boundary}\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n"
        f"Original-Rcpt-To: {complainer}\n"
        f"\n--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        f"From: Sam Sender 1 <{ADDRESS}>\nTo: {complainer}\nSubject: Hello\n"
        f"Message-ID: {original_id}\n"
        f"\n--{boundary}--\n"
    ).encode()


def reply(
    message: Message, *, body: str = "Sounds good, let's talk Tuesday.", **headers: str
) -> bytes:
    mail = EmailMessage()
    mail["From"] = message.to_email
    mail["To"] = ADDRESS
    mail["Subject"] = "Re: Hello"
    mail["Message-ID"] = make_msgid(domain="example.com")
    mail["In-Reply-To"] = message.message_id
    mail["References"] = message.message_id
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()
