"""A chunk goes out in groups on distinct mailboxes (SmtpPool.deliver_group), MAIL, RCPT and DATA
in one write when the server offers PIPELINING (RFC 2920) and step by step when it does not:
either way each message ends as its own replies say (a 550 bounces, a 451 waits, the others are
sent once, with the Message-ID the row holds), and the DATA marker is written for the messages
that reached the server's 354 only."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Message, MessageStatus
from campaigns.services import campaigns as svc
from tests.conftest import Cast
from tests.sending.conftest import Sandbox, drain, make_campaign, principal

pytestmark = pytest.mark.django_db(transaction=True)

EMAILS = [f"ok{i}@example.com" for i in range(4)] + ["gone@example.com", "busy@example.com"]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "step-by-step"])
def test_each_message_of_a_group_ends_as_its_replies_say(
    cast: Cast, sandbox: Sandbox, pipelining: bool
) -> None:
    handler = sandbox.controller.handler
    envelopes: list[tuple[str, ...]] = []  # what the server saw, per transaction

    async def handle_EHLO(  # noqa: N802
        server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(  # noqa: N802
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        envelopes.append((envelope.mail_from, address))
        if address.startswith("gone"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    handler.handle_EHLO = handle_EHLO
    handler.handle_RCPT = handle_RCPT
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, steps=1, mailboxes=3, emails=EMAILS)
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant, rounds=2)
    with schema_context(cast.tenant.schema_name):
        rows = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
    assert len(envelopes) == len(EMAILS)  # one transaction each, none repeated
    assert len({sender for sender, _ in envelopes}) == len(EMAILS)  # VERP: one per message
    gone, busy = rows.pop("gone@example.com"), rows.pop("busy@example.com")
    assert (gone.status, gone.smtp_code) == (MessageStatus.BOUNCED, 550)
    assert (busy.status, busy.smtp_code, busy.attempts) == (MessageStatus.QUEUED, 451, 1)
    assert {m.status for m in rows.values()} == {MessageStatus.SENT}
    assert {m.smtp_code for m in rows.values()} == {250}
    received = Counter(m["Message-ID"] for m in sandbox.messages())
    assert received == Counter({m.message_id: 1 for m in rows.values()})
    assert {m["To"] for m in sandbox.messages()} == set(rows)
    # Three mailboxes: the six went out in two groups of three connections.
    assert len({m.mailbox_id for m in [*rows.values(), gone, busy]}) == 3
