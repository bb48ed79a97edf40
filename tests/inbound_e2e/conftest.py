"""Issue 12 end to end: the real send pipeline, the sandbox SMTP server in deliver mode (its
answers built by penguinmails/sandbox/reports.py from the rule table, as `manage.py sandbox smtp
--deliver` runs it), the real Dovecot holding the sending mailbox, and the poller reading it.
Nothing is written into Dovecot by the tests themselves except where a test says so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import Campaign, CampaignLead, EmailTemplate, Lead, Message
from campaigns.sending import scheduler
from campaigns.services import campaigns as svc
from deliverability.models import Mailbox, Security
from deliverability.services.imap_reader import PollReport, poll_mailbox
from deliverability.services.mailboxes.lifecycle import sync_poll_index
from penguinmails.sandbox.delivery import Delivery
from penguinmails.sandbox.imap import SandboxImap
from penguinmails.sandbox.rules import RuleStore, make_rule
from penguinmails.sandbox.smtp import start_sandbox_smtp
from tests.conftest import Cast
from tests.dovecot import running_dovecot
from tests.sending.conftest import (
    DOMAIN,
    PASSWORD,
    USER,
    Sandbox,
    drain,
    make_campaign,
    make_mailbox,
    principal,
)

ADDRESS = f"sender1@{DOMAIN}"
IMAP_PASSWORD = "imap-password-e2e"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[SandboxImap]:
    with running_dovecot({ADDRESS: IMAP_PASSWORD}) as server:
        yield server


@dataclass
class RealWorld:
    """The delivering SMTP server (as tests/sending's Sandbox, for make_mailbox), its rules and
    the Dovecot behind it."""

    smtp: Sandbox
    rules: RuleStore
    imap: SandboxImap

    def rule(self, address: str, action: str, share: float = 1.0) -> None:
        self.rules.set(make_rule(address, action, share))


@pytest.fixture
def world(dovecot: SandboxImap, tmp_path: Path) -> Iterator[RealWorld]:
    dovecot.remove_user(ADDRESS, delete_mail=True)  # a fresh INBOX for each test
    dovecot.add_user(ADDRESS, IMAP_PASSWORD)
    rules_path = tmp_path / "sandbox-rules.json"
    controller = start_sandbox_smtp(
        "127.0.0.1",
        0,
        tmp_path / "maildir",
        user=USER,
        password=PASSWORD,
        delivery=Delivery(dovecot, RuleStore(rules_path)),
    )
    try:
        yield RealWorld(Sandbox(controller, tmp_path / "maildir"), RuleStore(rules_path), dovecot)
    finally:
        controller.stop()


@dataclass
class Sent:
    cast: Cast
    campaign: Campaign
    mailbox: Mailbox
    messages: dict[str, Message]  # by lead address: step 1

    def poll(self) -> PollReport:
        return poll_mailbox(self.cast.tenant, self.mailbox.pk)

    def schedule(self, at: datetime) -> None:
        """The scheduler as the beat runs it, at `at`: what is due then gets its Message."""
        with schema_context(self.cast.tenant.schema_name):
            scheduler.schedule_tenant(self.cast.tenant, now=at, only_due=False)

    def sent_to(self, address: str) -> int:
        with schema_context(self.cast.tenant.schema_name):
            return Message.objects.filter(lead__email=address, campaign=self.campaign).count()

    def enrollment(self, address: str) -> CampaignLead:
        with schema_context(self.cast.tenant.schema_name):
            return CampaignLead.objects.get(lead__email=address, campaign=self.campaign)

    def lead(self, address: str) -> Lead:
        with schema_context(self.cast.tenant.schema_name):
            return Lead.objects.get(email=address)


def send_step_one(
    cast: Cast, world: RealWorld, emails: list[str], *, delay_days: int = 1, **options: object
) -> Sent:
    """A two-step campaign (step 2 `delay_days` later) from a mailbox read over IMAP from the
    Dovecot; step 1 sent through the real pipeline to the delivering SMTP server."""
    with schema_context(cast.tenant.schema_name):
        mailbox = make_mailbox(
            world.smtp,
            1,
            imap_host="127.0.0.1",
            imap_port=world.imap.port,
            imap_security=Security.NONE,
            imap_username=ADDRESS,
            imap_password=IMAP_PASSWORD,
        )
        sync_poll_index(mailbox)
        campaign = make_campaign(cast, world.smtp, steps=1, mailboxes=1, emails=emails, **options)
        template = EmailTemplate.objects.first()
        assert template is not None
        svc.add_step(
            principal(cast),
            campaign,
            delay_amount=delay_days,
            delay_unit="days",
            variants=[(template.pk, 1)],
        )
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        messages = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
        mailbox.refresh_from_db()
    assert sorted(messages) == sorted(emails)
    assert all(m.status == "sent" for m in messages.values())
    return Sent(cast, campaign, mailbox, messages)


def later(days: float) -> datetime:
    return timezone.now() + timedelta(days=days)
