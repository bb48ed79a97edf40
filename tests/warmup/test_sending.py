"""The day's plan and sending, end to end: pairing from the public index across tenants, each
tenant's scheduled messages, the send job delivering through the real sandbox SMTP server with
the tagged Message-ID (the only mark), DKIM-signed plain text, no links, no List-Unsubscribe; the
mailbox's daily counter counts it."""

from __future__ import annotations

import mailbox as mailbox_lib
from datetime import timedelta

import dkim
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability import dkim as signer
from deliverability.dns.records import generate_dkim_keypair
from deliverability.models import Mailbox, SendingDomain
from tests.conftest import Cast
from tests.sending.conftest import Sandbox
from tests.warmup.conftest import member_of, plan, pool_mailbox, run_jobs
from warmup import tag
from warmup.models import WarmupMessage
from warmup.services import pool, sender

pytestmark = pytest.mark.django_db(transaction=True)


def _make_due(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        WarmupMessage.objects.update(scheduled_at=timezone.now() - timedelta(minutes=1))


def test_a_planned_message_leaves_through_the_sandbox_smtp_tagged(
    cast: Cast, sandbox: Sandbox
) -> None:
    ours, _ = pool_mailbox(cast.tenant, sandbox, "anna@alpha.test", start_volume=3,
                           weekend_percent=100)  # fmt: skip
    public_b64 = _signing_domain(cast, "alpha.test")
    theirs, _ = pool_mailbox(cast.other_tenant, sandbox, "ben@beta.test", start_volume=3,
                             weekend_percent=100)  # fmt: skip
    assert plan() == 2  # one plan job per tenant
    assert plan() == 2  # a second run of the day's plan writes nothing twice
    with schema_context(cast.tenant.schema_name):
        planned = list(WarmupMessage.objects.all())
    assert len(planned) == 3
    partner = member_of(cast.other_tenant, theirs)
    assert {(m.to_member_id, m.to_address, m.status) for m in planned} == {
        (partner.pk, "ben@beta.test", "scheduled")
    }
    _make_due(cast)
    connection.set_schema_to_public()
    assert sender.enqueue_due() == 2
    assert run_jobs(sender.SEND_TASK) == 2
    with schema_context(cast.tenant.schema_name):
        sent = list(WarmupMessage.objects.order_by("id"))
        assert {m.status for m in sent} == {"sent"} and all(m.sent_at for m in sent)
        assert Mailbox.objects.get(pk=ours.pk).sent_today == 3  # the campaigns' counter
    delivered = [m for m in sandbox.messages() if m["To"] == "ben@beta.test"]
    assert len(delivered) == 3
    own = member_of(cast.tenant, ours)
    for mail in delivered:
        found = tag.find(mail)
        assert found is not None and found.member_id == own.pk
        assert mail["Message-ID"].strip("<>") in {m.message_id for m in sent}
        assert mail["Date"] and "anna@alpha.test" in mail["From"]
        assert mail["List-Unsubscribe"] is None
        assert mail.get_content_type() == "text/plain"
        body = mail.get_content()
        assert "http" not in body and "lorem" not in body.lower() and "Ben" in body
        ours_only = {h.lower() for h in mail.keys() if not h.startswith("X-Sandbox-")}
        assert ours_only == {
            "dkim-signature", "from", "to", "subject", "date", "message-id", "mime-version",
            "content-type", "content-transfer-encoding",
        }  # fmt: skip
    assert len({m["Subject"] + m.get_content() for m in delivered}) == 3  # they vary
    # DKIM-signed like campaign mail: verified the way a receiver does, with the published key.
    txt = f"v=DKIM1; k=rsa; p={public_b64}".encode()
    for raw in _raw(sandbox):
        assert dkim.verify(raw, dnsfunc=lambda _name, **_: txt)


def _signing_domain(cast: Cast, name: str) -> str:
    keypair = generate_dkim_keypair()
    signer.forget_keys()
    with schema_context(cast.tenant.schema_name):
        SendingDomain.objects.create(
            name=name, tracking_host=f"track.{name}", dkim_selector="pm1",
            dkim_public_key=keypair.public_key_b64, dkim_private_key=keypair.private_key_pem,
            dmarc_rua=f"dmarc@{name}",
        )  # fmt: skip
    return keypair.public_key_b64


def _raw(sandbox: Sandbox) -> list[bytes]:
    box = mailbox_lib.Maildir(str(sandbox.maildir), create=False)
    return [
        box.get_bytes(k) for k in box.keys() if b"Envelope-To: <ben@beta.test>" in box.get_bytes(k)
    ]


def test_a_paused_warm_up_or_a_partner_gone_cancels_instead_of_sending(
    cast: Cast, sandbox: Sandbox
) -> None:
    ours, _ = pool_mailbox(cast.tenant, sandbox, "cara@gamma.test", start_volume=2,
                           weekend_percent=100)  # fmt: skip
    theirs, _ = pool_mailbox(cast.other_tenant, sandbox, "dan@delta.test", start_volume=2,
                             weekend_percent=100)  # fmt: skip
    plan()
    _make_due(cast)
    with schema_context(cast.other_tenant.schema_name):
        pool.opt_out(theirs)  # the partner leaves the pool
    with schema_context(cast.tenant.schema_name):
        report = sender.send_due(cast.tenant)
        assert (report.sent, report.canceled) == (0, 2)
        assert set(WarmupMessage.objects.values_list("error", flat=True)) == {
            "partner left the pool"
        }
        assert Mailbox.objects.get(pk=ours.pk).sent_today == 0
    assert sandbox.messages() == []
