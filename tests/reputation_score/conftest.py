"""Reputation score fixtures: a sending domain with its DNS verdicts, mailboxes with placed
warm-up mail and sender rollups, in acme's schema (rows made directly: the figures the monitor
reads, whatever wrote them); the sandbox DNS server for listings (tests/blocklists)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from deliverability.models import (
    DomainRecord,
    DomainStatus,
    Mailbox,
    MailboxKind,
    MailboxStatus,
    RecordStatus,
    Security,
    SendingDomain,
)
from deliverability.services import sender_stats
from deliverability.services.sender_stats import SenderBump
from tests.blocklists.conftest import dnsbl, make_ip  # noqa: F401 - the fixture
from warmup.models import Placement, WarmupMessage, WarmupMessageStatus


def make_domain(name: str, *, broken: tuple[str, ...] = ()) -> SendingDomain:
    """A verified domain whose SPF, DKIM and DMARC records verify, except `broken` ones."""
    domain = SendingDomain.objects.create(
        name=name, tracking_host=f"track.{name}", dkim_selector="pm1", dkim_public_key="MIIB",
        dkim_private_key="secret", dmarc_rua=f"dmarc@{name}", status=DomainStatus.VERIFIED,
    )  # fmt: skip
    for position, purpose in enumerate(("spf", "dkim", "dmarc")):
        DomainRecord.objects.create(
            domain=domain, position=position, purpose=purpose, type="TXT", name=name,
            value="v=...", ttl=300, required=True,
            status=RecordStatus.MISSING if purpose in broken else RecordStatus.OK,
        )  # fmt: skip
    return domain


def make_mailbox(address: str, *, limit: int = 40) -> Mailbox:
    return Mailbox.objects.create(
        address=address, display_name=address.split("@")[0].title(), kind=MailboxKind.OTHER,
        smtp_host="127.0.0.1", smtp_port=2525, smtp_security=Security.NONE,
        smtp_username=address, smtp_password="x", daily_limit=limit, status=MailboxStatus.ACTIVE,
    )  # fmt: skip


def place(mailbox: Mailbox, *, inbox: int, spam: int, days_ago: int = 0) -> None:
    """Warm-up messages of `mailbox`, sent and placed `days_ago` days ago."""
    at = timezone.now() - timedelta(days=days_ago)
    n = WarmupMessage.objects.count()
    for i, where in enumerate([Placement.INBOX] * inbox + [Placement.SPAM] * spam):
        WarmupMessage.objects.create(
            mailbox=mailbox, to_member_id=1, to_address="partner@pool.test",
            message_id=f"w{n + i}.{mailbox.pk}@pool.test", subject="Hello", body="Hi",
            status=WarmupMessageStatus.SENT, scheduled_at=at, sent_at=at,
            placement=where, placed_at=at,
        )  # fmt: skip


def sends(mailbox: Mailbox, *, sent: int, bounced: int = 0, complained: int = 0) -> None:
    today = timezone.now().date()
    sender_stats.add(
        [
            SenderBump(mailbox.pk, today, "sent", sent),
            SenderBump(mailbox.pk, today, "bounced", bounced),
            SenderBump(mailbox.pk, today, "complained", complained),
        ]
    )
