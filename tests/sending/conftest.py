"""Fixtures for the send path: the real sandbox SMTP server on a free port, a verified sending
domain, mailboxes pointing at the sandbox, a ready campaign, and helpers that run the scheduler
and the send jobs in this process (the worker's own runner, not a shortcut)."""

from __future__ import annotations

import mailbox as mailbox_lib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import Campaign, EmailTemplate, Lead, LeadList
from campaigns.sending import scheduler
from campaigns.services import campaigns as svc
from deliverability.models import (
    DomainStatus,
    Mailbox,
    MailboxKind,
    MailboxStatus,
    Security,
    SendingDomain,
)
from penguinmails.models import CLAIMABLE_STATUSES, Job
from penguinmails.queue import runner
from penguinmails.sandbox.smtp import start_sandbox_smtp
from tenants.models import Membership, Tenant
from tenants.services.access import Principal, principal_for_membership
from tests.conftest import Cast

USER = "sender@mail.acme.test"
PASSWORD = "sandbox-password-1"
DOMAIN = "mail.acme.test"


@dataclass
class Sandbox:
    controller: Controller
    maildir: Path

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def messages(self) -> list[EmailMessage]:
        box = mailbox_lib.Maildir(str(self.maildir), create=False)
        found = []
        for key in box.keys():
            raw = box.get_bytes(key)
            found.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        return found  # type: ignore[return-value]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    controller = start_sandbox_smtp(
        "127.0.0.1", 0, tmp_path / "maildir", user=USER, password=PASSWORD
    )
    yield Sandbox(controller, tmp_path / "maildir")
    controller.stop()


def principal(cast: Cast) -> Principal:
    return principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))


def make_domain(status: str = DomainStatus.VERIFIED, name: str = DOMAIN) -> SendingDomain:
    return SendingDomain.objects.create(
        name=name,
        tracking_host=f"track.{name}",
        dkim_selector="pm1",
        dkim_public_key="MIIB",
        dkim_private_key="secret",
        dmarc_rua=f"dmarc@{name}",
        status=status,
    )


def make_mailbox(sandbox: Sandbox, n: int = 1, *, daily_limit: int = 500, **kw: Any) -> Mailbox:
    fields: dict[str, Any] = {
        "address": f"sender{n}@{DOMAIN}",
        "display_name": f"Sam Sender {n}",
        "kind": MailboxKind.OTHER,
        "smtp_host": "127.0.0.1",
        "smtp_port": sandbox.port,
        "smtp_security": Security.NONE,
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "daily_limit": daily_limit,
        "status": MailboxStatus.ACTIVE,
    }
    fields.update(kw)
    return Mailbox.objects.create(**fields)


def make_campaign(
    cast: Cast,
    sandbox: Sandbox,
    *,
    leads: int = 3,
    steps: int = 2,
    mailboxes: int = 2,
    name: str = "Launch",
    emails: list[str] | None = None,
    **settings: Any,
) -> Campaign:
    """A draft campaign with `steps` steps (no delay), `leads` leads and `mailboxes` mailboxes on
    a verified domain, in acme's schema (the caller is inside schema_context)."""
    if not SendingDomain.objects.filter(name=DOMAIN).exists():
        make_domain()
    boxes = [
        Mailbox.objects.filter(address=f"sender{n}@{DOMAIN}").first() or make_mailbox(sandbox, n)
        for n in range(1, mailboxes + 1)
    ]
    template = EmailTemplate.objects.create(
        name=f"{name} intro",
        subject="Hello {{first_name|there}}",
        html_body='<p>Hi {{first_name}}, <a href="https://example.org/offer">the offer</a>.</p>',
        text_body="Hi {{first_name}}, see https://example.org/offer",
    )
    lead_list = LeadList.objects.create(name=f"{name} list")
    addresses = emails or [f"lead{i}@example.com" for i in range(leads)]
    for i, address in enumerate(addresses):
        lead = Lead.objects.create(email=address, first_name=f"Lead{i}")
        lead.lists.add(lead_list)
    p = principal(cast)
    defaults: dict[str, Any] = {
        "window_days": [0, 1, 2, 3, 4, 5, 6],
        "window_start": time(0, 0),
        "window_end": time(23, 59),
        "min_gap_seconds": 0,
        "max_gap_seconds": 0,
        "daily_cap": 10_000,
    }
    defaults.update(settings)
    campaign = svc.create_campaign(
        p, name=name, lead_list_ids=[lead_list.pk], mailbox_ids=[b.pk for b in boxes], **defaults
    )
    for _ in range(steps):
        svc.add_step(p, campaign, delay_amount=0, delay_unit="hours", variants=[(template.pk, 1)])
    return campaign


def run_send_jobs(tenant: Tenant) -> int:
    """Run every due send job of the tenant with the worker's runner; returns how many ran."""
    ran = 0
    connection.set_schema_to_public()
    for job in Job.objects.filter(
        tenant=tenant,
        task=scheduler.SEND_TASK,
        status__in=CLAIMABLE_STATUSES,
        run_at__lte=timezone.now(),
    ).order_by("run_at", "id"):
        runner.run(job.pk, worker_id="test")
        ran += 1
    connection.set_schema_to_public()
    return ran


def drain(tenant: Tenant, rounds: int = 10) -> None:
    """Scheduler, then the send jobs, until nothing more happens (steps without delay)."""
    for _ in range(rounds):
        with schema_context(tenant.schema_name):
            scheduler.schedule_tenant(tenant, only_due=False)
        if not run_send_jobs(tenant):
            with schema_context(tenant.schema_name):
                scheduler.schedule_tenant(tenant, only_due=False)
            if not run_send_jobs(tenant):
                return
