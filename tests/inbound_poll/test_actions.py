"""Issue 12, items 1 and 4 end to end: a campaign sent through the real pipeline, what comes back
delivered into the sending mailbox in the real Dovecot, read by the poll job and acted on."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from django_tenants.utils import schema_context

from campaigns.models import (
    CampaignDailyStat,
    CampaignLead,
    EnrollmentStatus,
    Lead,
    Message,
    MessageEvent,
    Suppression,
)
from campaigns.sending.verp import bounce_address
from campaigns.tracking.links import unsubscribe_url
from deliverability.models import InboundMessage, InboundState, Mailbox, SendingDomain
from penguinmails.sandbox.imap import SandboxImap
from tests.conftest import Cast
from tests.inbound_poll.conftest import (
    ADDRESS,
    arf,
    dsn,
    reply,
    schedule_tomorrow,
    sent_world,
    verp_of,
)
from tests.sending.conftest import DOMAIN, Sandbox

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "https://track.example.test"


def _state(world, lead_email: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with schema_context(world.cast.tenant.schema_name):
        lead = Lead.objects.get(email=lead_email)
        enrollment = CampaignLead.objects.get(lead=lead, campaign=world.campaign)
        return str(lead.status), str(enrollment.status)


def test_a_hard_bounce_suppresses_bounces_and_stops_the_next_step(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    bounced, kept = world.messages
    uid = world.deliver(dsn(verp_of(world, bounced), bounced.to_email, bounced.message_id))
    report = world.poll()
    assert (report.fetched, report.stored, report.processed) == (1, 1, 1)
    assert report.folders == ("INBOX", "Junk")
    with schema_context(cast.tenant.schema_name):
        message = Message.objects.get(pk=bounced.pk)
        assert message.status == "bounced" and message.bounced_at is not None
        suppression = Suppression.objects.get(value=bounced.to_email)
        assert suppression.reason == "bounced" and suppression.source.startswith("inbound")
        assert Message.objects.get(pk=kept.pk).status == "sent"
        inbound = InboundMessage.objects.get()
        assert (inbound.kind, inbound.status_code, inbound.bounce_class) == (
            "bounce",
            "5.1.1",
            "hard",
        )
        assert inbound.matched_message_id == bounced.pk and inbound.status == InboundState.PROCESSED
        assert inbound.raw is not None and inbound.raw_size > 0
        assert sum(CampaignDailyStat.objects.values_list("bounced", flat=True)) == 1
    assert _state(world, bounced.to_email) == ("bounced", EnrollmentStatus.STOPPED)
    assert _state(world, kept.to_email) == ("active", EnrollmentStatus.ACTIVE)
    schedule_tomorrow(world)
    with schema_context(cast.tenant.schema_name):
        assert Message.objects.filter(lead_id=bounced.lead_id).count() == 1
        assert Message.objects.filter(lead_id=kept.lead_id).count() == 2
    # Read with BODY.PEEK: the message stays unread, and nothing is deleted.
    client = imap.connect(ADDRESS)
    try:
        client.select("INBOX", readonly=True)
        _, data = client.uid("FETCH", str(uid), "(FLAGS)")
        assert b"\\Seen" not in data[0]
    finally:
        client.logout()
    # Nothing new: a second poll reads and does nothing.
    again = world.poll()
    assert (again.fetched, again.processed) == (0, 0)


def test_a_reply_stops_the_sequence_and_an_out_of_office_does_not(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    replied, away = world.messages
    world.deliver(reply(replied))
    world.deliver(
        reply(
            away,
            body="I am out of the office until 12 January with limited access to email.",
            Auto_Submitted="auto-replied",
            Subject_="x",
        )
    )
    report = world.poll()
    assert report.processed == 2
    assert _state(world, replied.to_email) == ("replied", EnrollmentStatus.STOPPED)
    assert _state(world, away.to_email) == ("active", EnrollmentStatus.ACTIVE)
    with schema_context(cast.tenant.schema_name):
        kinds = dict(InboundMessage.objects.values_list("matched_message_id", "kind"))
        assert kinds.get(replied.pk) == "reply"
        assert sorted(InboundMessage.objects.values_list("kind", flat=True)) == [
            "auto_reply",
            "reply",
        ]
        assert Message.objects.get(pk=replied.pk).replied_at is not None
        assert sum(CampaignDailyStat.objects.values_list("replied", flat=True)) == 1
        assert not Suppression.objects.exists()
    schedule_tomorrow(world)
    with schema_context(cast.tenant.schema_name):
        assert Message.objects.filter(lead_id=replied.lead_id).count() == 1
        assert Message.objects.filter(lead_id=away.lead_id).count() == 2


def test_a_forged_token_or_another_tenants_message_changes_nothing(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    target = world.messages[0]
    good = verp_of(world, target)
    local, _, domain = good.partition("@")
    forged = local[:-2] + ("aa" if not local.endswith("aa") else "bb") + "@" + domain
    foreign = bounce_address(cast.other_tenant.pk, target.pk, DOMAIN, local="sender1")
    world.deliver(dsn(forged, target.to_email, "<not-ours@example.com>"))
    world.deliver(dsn(foreign, target.to_email, "<someone-elses@globex.test>"))
    report = world.poll()
    assert report.processed == 2
    with schema_context(cast.tenant.schema_name):
        assert not Suppression.objects.exists()
        assert Message.objects.get(pk=target.pk).status == "sent"
        assert not MessageEvent.objects.filter(kind="bounce").exists()
        assert set(InboundMessage.objects.values_list("matched_message_id", flat=True)) == {None}
    assert _state(world, target.to_email) == ("active", EnrollmentStatus.ACTIVE)


def test_the_junk_folder_is_read(cast: Cast, sandbox: Sandbox, imap: SandboxImap) -> None:
    world = sent_world(cast, sandbox, imap)
    replied, _ = world.messages
    world.deliver(reply(replied), folder="Junk")
    report = world.poll()
    assert report.processed == 1
    assert _state(world, replied.to_email) == ("replied", EnrollmentStatus.STOPPED)
    with schema_context(cast.tenant.schema_name):
        assert InboundMessage.objects.get().folder == "Junk"


def test_a_complaint_suppresses_stops_and_counts_against_mailbox_and_domain(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    complained, _ = world.messages
    world.deliver(arf(ADDRESS, complained.to_email, complained.message_id))
    assert world.poll().processed == 1
    assert _state(world, complained.to_email)[1] == EnrollmentStatus.STOPPED
    with schema_context(cast.tenant.schema_name):
        assert Suppression.objects.get(value=complained.to_email).reason == "complaint"
        assert Mailbox.objects.get(pk=world.mailbox.pk).complaints == 1
        assert SendingDomain.objects.get(name=DOMAIN).complaints == 1
        assert sum(CampaignDailyStat.objects.values_list("complained", flat=True)) == 1
        assert InboundMessage.objects.get().kind == "complaint"


def test_soft_bounces_suppress_only_after_the_limit(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap, settings: Any
) -> None:
    settings.INBOUND_SOFT_BOUNCE_LIMIT = 2
    world = sent_world(cast, sandbox, imap)
    target, _ = world.messages
    full = {"status": "4.2.2", "diagnostic": "452 4.2.2 Mailbox full"}
    world.deliver(dsn(verp_of(world, target), target.to_email, target.message_id, **full))
    world.poll()
    with schema_context(cast.tenant.schema_name):
        assert InboundMessage.objects.get().bounce_class == "soft"
        assert not Suppression.objects.exists()
        assert Message.objects.get(pk=target.pk).status == "sent"
    assert _state(world, target.to_email) == ("active", EnrollmentStatus.ACTIVE)
    world.deliver(dsn(verp_of(world, target), target.to_email, target.message_id, **full))
    world.poll()
    with schema_context(cast.tenant.schema_name):
        assert Suppression.objects.get(value=target.to_email).reason == "bounced"
        assert Message.objects.get(pk=target.pk).status == "sent"  # no hard bounce
    assert _state(world, target.to_email)[1] == EnrollmentStatus.STOPPED


def test_a_new_uidvalidity_restarts_from_the_recent_window(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    world.deliver(reply(world.messages[0]))
    world.poll()
    with schema_context(cast.tenant.schema_name):
        mailbox = Mailbox.objects.get(pk=world.mailbox.pk)
        validity = mailbox.inbound_cursor["INBOX"]["uidvalidity"]
        # The server recreated the folder: the old cursor's UIDs mean nothing any more.
        mailbox.inbound_cursor = {"INBOX": {"uidvalidity": validity + 1, "last_uid": 999}}
        mailbox.save(update_fields=["inbound_cursor"])
    report = world.poll()
    # Read again from the recent window (UIDNEXT - INBOUND_POLL_WINDOW), stored and acted on
    # once: the same (mailbox, folder, uidvalidity, uid) is already there.
    assert (report.fetched, report.stored, report.processed) == (1, 0, 0)
    with schema_context(cast.tenant.schema_name):
        cursor = Mailbox.objects.get(pk=world.mailbox.pk).inbound_cursor["INBOX"]
        assert cursor["uidvalidity"] == validity and cursor["last_uid"] >= 1
        assert InboundMessage.objects.count() == 1
        assert sum(CampaignDailyStat.objects.values_list("replied", flat=True)) == 1


def test_a_folder_recreated_by_the_server_is_read_from_its_new_uids(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    """A real UIDVALIDITY change: Dovecot's Junk deleted and created again restarts its UIDs at
    1 under a new UIDVALIDITY; the mail delivered there after it is read and acted on, although
    its UID is not above the old cursor's."""
    world = sent_world(cast, sandbox, imap)
    first, second = world.messages
    world.deliver(reply(first), folder="Junk")
    world.deliver(reply(first), folder="Junk")
    assert world.poll().processed == 2
    with schema_context(cast.tenant.schema_name):
        before = Mailbox.objects.get(pk=world.mailbox.pk).inbound_cursor["Junk"]
    assert before["last_uid"] == 2
    client = imap.connect(ADDRESS)
    try:
        assert client.delete("Junk")[0] == "OK"
        assert client.create("Junk")[0] == "OK"
    finally:
        client.logout()
    assert world.deliver(reply(second), folder="Junk") == 1  # UID 1 again, below last_uid 2
    report = world.poll()
    assert (report.fetched, report.stored, report.processed) == (1, 1, 1)
    with schema_context(cast.tenant.schema_name):
        after = Mailbox.objects.get(pk=world.mailbox.pk).inbound_cursor["Junk"]
        assert after["uidvalidity"] != before["uidvalidity"] and after["last_uid"] == 1
        assert Message.objects.get(pk=second.pk).replied_at is not None
        assert InboundMessage.objects.count() == 3
    assert _state(world, second.to_email)[1] == EnrollmentStatus.STOPPED
    assert world.poll().fetched == 0  # and read once


def test_an_unsubscribe_request_unsubscribes_as_the_one_click_post_does(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap
) -> None:
    world = sent_world(cast, sandbox, imap)
    leaving, staying = world.messages
    for message, token in (
        # The subject compose puts in the List-Unsubscribe mailto: the one-click URL's token.
        (leaving, unsubscribe_url(BASE, cast.tenant.pk, leaving.pk).rsplit("/", 1)[1]),
        (staying, unsubscribe_url(BASE, cast.other_tenant.pk, staying.pk).rsplit("/", 1)[1]),
    ):
        mail = EmailMessage()
        mail["From"] = message.to_email
        mail["To"] = ADDRESS
        mail["Subject"] = f"unsubscribe {token}"
        mail.set_content("")
        world.deliver(mail.as_bytes())
    assert world.poll().processed == 2
    assert _state(world, leaving.to_email) == ("unsubscribed", EnrollmentStatus.STOPPED)
    assert _state(world, staying.to_email) == ("active", EnrollmentStatus.ACTIVE)
    with schema_context(cast.tenant.schema_name):
        assert Suppression.objects.get().value == leaving.to_email
        assert Message.objects.get(pk=leaving.pk).unsubscribed_at is not None
        assert sum(CampaignDailyStat.objects.values_list("unsubscribed", flat=True)) == 1


def test_the_messages_of_one_chunk_see_each_others_actions(
    cast: Cast, sandbox: Sandbox, imap: SandboxImap, settings: Any
) -> None:
    """A chunk is matched at once and its events written at its end, yet each message acts on
    what the ones before it did: the second soft bounce of an address in the same chunk reaches
    the limit, a second complaint about a message is not counted again, a second hard bounce
    does not bounce the message again."""
    settings.INBOUND_SOFT_BOUNCE_LIMIT = 2
    world = sent_world(cast, sandbox, imap, leads=3)
    soft, complained, hard = world.messages
    full = {"status": "4.2.2", "diagnostic": "452 4.2.2 Mailbox full"}
    for _ in range(2):
        world.deliver(dsn(verp_of(world, soft), soft.to_email, soft.message_id, **full))
        world.deliver(arf(ADDRESS, complained.to_email, complained.message_id))
        world.deliver(dsn(verp_of(world, hard), hard.to_email, hard.message_id))
    report = world.poll()
    assert report.processed == 6
    with schema_context(cast.tenant.schema_name):
        actions = list(InboundMessage.objects.order_by("uid").values_list("action", flat=True))
        assert actions[0] == "soft bounce 4.2.2 counted (1 in 7 days)"
        assert actions[3].startswith("soft bounce 4.2.2: suppressed")
        assert Suppression.objects.get(value=soft.to_email).reason == "bounced"
        assert MessageEvent.objects.filter(kind="bounce").count() == 4
        assert MessageEvent.objects.filter(kind="complaint").count() == 2
        assert sum(CampaignDailyStat.objects.values_list("complained", flat=True)) == 1
        assert sum(CampaignDailyStat.objects.values_list("bounced", flat=True)) == 1
        assert Message.objects.get(pk=hard.pk).status == "bounced"
        assert Message.objects.get(pk=soft.pk).status == "sent"
