"""Issue 12: the mailboxes page shows each mailbox's 30-day rates (the sender rollups) and
automatic protection's flag or hold with its reason; an outsider's tenant shows none of it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import (
    Mailbox,
    MailboxKind,
    ProtectedKind,
    ProtectionLevel,
    ProtectionState,
    SenderDailyStat,
)
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db(transaction=True)

REASON = "Bounce rate 6.00 % passed 5 % over 30 days"


def _mailbox(address: str) -> Mailbox:
    return Mailbox.objects.create(
        address=address,
        kind=MailboxKind.GOOGLE,
        smtp_host="127.0.0.1",
        smtp_port=2525,
        smtp_security="none",
        smtp_username=address,
        smtp_password="x",
        daily_limit=10,
    )


def test_the_mailboxes_page_shows_rates_and_protection_to_the_owner_only(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        held = _mailbox("held@example.com")
        _mailbox("quiet@example.com")
        SenderDailyStat.objects.create(
            mailbox=held, day=timezone.now().date(), sent=94, bounced=6, complained=1, replied=2
        )
        ProtectionState.objects.create(
            kind=ProtectedKind.MAILBOX,
            object_id=held.pk,
            level=ProtectionLevel.PAUSED,
            reason=REASON,
        )
    owner = client_for(cast.owner, cast.tenant)
    page = owner.get("/mailboxes/")
    assert page.status_code == 200
    body = page.content.decode()
    row = body.split(f'id="mailbox-{held.pk}"')[1].split("</tr>")[0]
    assert "Bounces 6.00 %" in row  # 6 of 100
    assert "Complaints 1.06 %" in row and "Replies 2.13 %" in row  # of 94 sent
    assert 'data-protection="paused"' in row and "Paused by protection" in row
    assert REASON in row
    quiet = body.split("quiet@example.com")[1].split("</tr>")[0]
    assert "Nothing sent" in quiet and "data-protection=" not in quiet
    # No per-row queries: a third mailbox costs nothing more.
    with CaptureQueriesContext(connection) as before:
        owner.get("/mailboxes/")
    with schema_context(cast.tenant.schema_name):
        _mailbox("third@example.com")
    with CaptureQueriesContext(connection) as after:
        owner.get("/mailboxes/")
    assert len(after) == len(before)
    # Another tenant's user: no row, no rates, no reason.
    for client in (
        client_for(cast.outsider, cast.other_tenant),
        client_for(cast.outsider, cast.tenant),
    ):
        other = client.get("/mailboxes/")
        assert b"held@example.com" not in other.content
        assert REASON.encode() not in other.content and b"Bounces 6.00" not in other.content
