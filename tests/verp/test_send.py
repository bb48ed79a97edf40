"""Issue 12, item 2: a campaign sent through the real pipeline to the sandbox SMTP server goes
out with the message's bounce address as its envelope sender (what receivers write into
Return-Path), which parses back to that message; the header From, List-Unsubscribe, DKIM and
the sandbox pages' scoping are as before."""

from __future__ import annotations

import dkim
import pytest
from django_tenants.utils import schema_context

from campaigns.sending.verp import bounce_address, parse_bounce_address
from deliverability.models import MailboxKind, SendingDomain
from penguinmails.sandbox.dns import SandboxDnsServer
from penguinmails.sandbox.scope import TenantScope
from tests.conftest import Cast
from tests.domains.conftest import dns_server  # noqa: F401 - the fixture
from tests.sending.conftest import DOMAIN, Sandbox, make_mailbox
from tests.sending.test_dkim import published, sandbox_txt  # noqa: F401 - the fixture
from tests.verp.conftest import send_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_envelope_sender_is_the_messages_bounce_address(cast: Cast, sandbox: Sandbox) -> None:
    sent = send_campaign(cast, sandbox, leads=3)
    assert len(sent.captured) == 3
    by_pk = {m.pk: m for m in sent.messages}
    for captured in sent.captured:
        envelope_from = captured.envelope_from
        local, _, domain = envelope_from.rpartition("@")
        assert domain == DOMAIN and local.startswith("sender1+b-") and len(local) <= 64
        parsed = parse_bounce_address(envelope_from)
        assert parsed is not None, envelope_from
        tenant_id, message_pk = parsed
        assert tenant_id == cast.tenant.pk
        message = by_pk[message_pk]
        assert message.to_email in captured.envelope_to
        assert captured.header("Message-ID") == message.message_id
        # The header From is the mailbox's; no Return-Path of ours (receivers add it).
        assert captured.from_header == f"Sam Sender 1 <sender1@{DOMAIN}>"
        assert captured.header("Return-Path") == ""
        assert "/t/u/" in captured.header("List-Unsubscribe")
        assert f"mailto:sender1@{DOMAIN}" in captured.header("List-Unsubscribe")
    # The sandbox pages: the acme workspace sees them, globex does not.
    with schema_context(cast.tenant.schema_name):
        mine = TenantScope.current(cast.tenant.pk)
    with schema_context(cast.other_tenant.schema_name):
        theirs = TenantScope.current(cast.other_tenant.pk)
    assert all(mine(c) for c in sent.captured)
    assert not any(theirs(c) for c in sent.captured)


def test_the_address_names_the_tenant_and_the_message_only(cast: Cast, sandbox: Sandbox) -> None:
    """Nothing of the attempt is in it: a retry of the message names the same address."""
    first = send_campaign(cast, sandbox, leads=1)
    (captured,) = first.captured
    (message,) = first.messages
    assert captured.envelope_from == bounce_address(
        cast.tenant.pk, message.pk, DOMAIN, local="sender1"
    )


def test_a_google_mailbox_keeps_its_own_envelope_sender(cast: Cast, sandbox: Sandbox) -> None:
    """Google and Microsoft rewrite or refuse another MAIL FROM: the account's address stays."""
    with schema_context(cast.tenant.schema_name):
        make_mailbox(sandbox, 1, kind=MailboxKind.GOOGLE)
    sent = send_campaign(cast, sandbox, leads=1)
    (captured,) = sent.captured
    assert captured.envelope_from == f"sender1@{DOMAIN}"


def test_dkim_still_verifies(
    cast: Cast,
    sandbox: Sandbox,
    dns_server: SandboxDnsServer,  # noqa: F811
    published: SendingDomain,  # noqa: F811
) -> None:
    sent = send_campaign(cast, sandbox, leads=2)
    lookup = sandbox_txt(dns_server)
    assert len(sent.captured) == 2
    for captured in sent.captured:
        assert parse_bounce_address(captured.envelope_from) is not None
        assert dkim.verify(captured.raw, dnsfunc=lookup), captured.raw[:800]
