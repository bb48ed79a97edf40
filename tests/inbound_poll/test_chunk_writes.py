"""A chunk's writes are kept and written at its end (campaigns.services.feedback_chunk), yet the
outcome is what acting on each message at once, in order, gives: these cases, where two
messages of one chunk are about the same lead, hold on the code that wrote at once as well."""

from __future__ import annotations

import pytest
from django.db.models import Sum
from django_tenants.utils import schema_context

from campaigns.models import CampaignDailyStat, CampaignLead, Lead, Message, Suppression
from deliverability.models import InboundMessage
from penguinmails.sandbox.imap import SandboxImap
from tests.conftest import Cast
from tests.inbound_poll.conftest import ADDRESS, World, dsn, reply, sent_world, verp_of
from tests.sending.conftest import Sandbox

pytestmark = pytest.mark.django_db(transaction=True)


def _actions(world: World) -> list[str]:
    with schema_context(world.cast.tenant.schema_name):
        return list(InboundMessage.objects.order_by("uid").values_list("action", flat=True))


def _lead(world: World, message: Message) -> tuple[str, str, str]:
    """(lead status, enrollment status, stop reason)."""
    with schema_context(world.cast.tenant.schema_name):
        enrollment = CampaignLead.objects.get(lead_id=message.lead_id, campaign=world.campaign)
        status = Lead.objects.get(pk=message.lead_id).status
        return str(status), str(enrollment.status), enrollment.stop_reason


def _totals(world: World) -> dict[str, int]:
    with schema_context(world.cast.tenant.schema_name):
        sums = CampaignDailyStat.objects.aggregate(replied=Sum("replied"), bounced=Sum("bounced"))
        return {k: int(v or 0) for k, v in sums.items()}


def test_a_reply_then_a_hard_bounce_of_one_lead_and_a_lead_replying_twice(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap, leads=2)
    first, second = world.messages
    world.deliver(reply(first))
    world.deliver(reply(second))
    world.deliver(dsn(verp_of(world, first), first.to_email, first.message_id))
    world.deliver(reply(second, body="And one more thing."))
    assert world.poll().processed == 4
    assert _actions(world) == [
        "reply: lead marked replied",
        "reply: lead marked replied",
        "hard bounce 5.1.1: suppressed, 0 enrollment(s) stopped",
        "reply: lead already replied or stopped",
    ]
    # The reply came first: it stopped the enrollment and marked the message replied; the
    # bounce then bounced the message and the lead.
    assert _lead(world, first) == ("bounced", "stopped", "Replied.")
    assert _lead(world, second) == ("replied", "stopped", "Replied.")
    assert _totals(world) == {"replied": 2, "bounced": 1}
    with schema_context(cast.tenant.schema_name):
        bounced = Message.objects.get(pk=first.pk)
        assert bounced.status == "bounced" and bounced.replied_at is not None
        assert Suppression.objects.get().value == first.to_email


def test_a_hard_bounce_then_a_reply_of_one_lead(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap, leads=2)
    first, second = world.messages
    world.deliver(dsn(verp_of(world, first), first.to_email, first.message_id))
    world.deliver(reply(first))
    world.deliver(reply(second))
    assert world.poll().processed == 3
    assert _actions(world) == [
        "hard bounce 5.1.1: suppressed, 1 enrollment(s) stopped",
        "reply: lead already replied or stopped",
        "reply: lead marked replied",
    ]
    # The bounced message is no longer one a reply marks; the enrollment keeps the bounce's
    # reason.
    assert _lead(world, first) == ("bounced", "stopped", "Bounced.")
    assert _lead(world, second) == ("replied", "stopped", "Replied.")
    assert _totals(world) == {"replied": 1, "bounced": 1}
    with schema_context(cast.tenant.schema_name):
        assert Message.objects.get(pk=first.pk).replied_at is None


def test_an_unsubscribe_request_after_a_bounce_keeps_the_bounce_reason(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    from email.message import EmailMessage

    from campaigns.tracking.links import unsubscribe_url

    world = sent_world(cast, sandbox, imap, leads=1)
    (only,) = world.messages
    world.deliver(dsn(verp_of(world, only), only.to_email, only.message_id))
    mail = EmailMessage()
    mail["From"] = only.to_email
    mail["To"] = ADDRESS
    token = unsubscribe_url("https://t.example.test", cast.tenant.pk, only.pk).rsplit("/", 1)[1]
    mail["Subject"] = f"unsubscribe {token}"
    mail.set_content("")
    world.deliver(mail.as_bytes())
    assert world.poll().processed == 2
    assert _actions(world) == [
        "hard bounce 5.1.1: suppressed, 1 enrollment(s) stopped",
        "unsubscribed",
    ]
    assert _lead(world, only) == ("unsubscribed", "stopped", "Bounced.")
    with schema_context(cast.tenant.schema_name):
        assert Suppression.objects.get().reason == "bounced"
