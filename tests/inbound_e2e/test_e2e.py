"""Issue 12's end-to-end tests: what the sandbox SMTP server answers (a DSN, a reply, an
out-of-office) arrives in the sending mailbox in Dovecot, the poller reads it, and the campaign
acts on it: the next step goes, or does not go, or waits."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import EnrollmentStatus, Message, MessageEvent, Suppression
from deliverability.models import InboundMessage
from tests.conftest import Cast
from tests.inbound_e2e.conftest import ADDRESS, RealWorld, later, send_step_one

pytestmark = pytest.mark.django_db(transaction=True)

GHOST = "ghost@prospects.example"  # the sandbox bounces it: user unknown
ADA = "ada@prospects.example"
GRACE = "grace@prospects.example"


def test_a_dsn_from_the_sandbox_suppresses_the_address_and_step_two_skips_it(
    cast: Cast, world: RealWorld
) -> None:
    world.rule(GHOST, "bounce")
    sent = send_step_one(cast, world, [GHOST, ADA])
    # The SMTP server accepted both, then sent a DSN to the VERP Return-Path: it is in Dovecot.
    client = world.imap.connect(ADDRESS)
    try:
        client.select("INBOX", readonly=True)
        _, found = client.uid("SEARCH", "ALL")
        assert len(found[0].split()) == 1
        _, data = client.uid("FETCH", found[0].split()[0], "(BODY.PEEK[HEADER])")
        head = next(item[1] for item in data if isinstance(item, tuple)).decode()
        assert "+b-" in head.split("Delivered-To:", 1)[1].splitlines()[0]
    finally:
        client.logout()
    report = sent.poll()
    assert (report.fetched, report.processed) == (1, 1)
    ghost = sent.messages[GHOST]
    with schema_context(cast.tenant.schema_name):
        assert Message.objects.get(pk=ghost.pk).status == "bounced"
        assert Message.objects.get(pk=sent.messages[ADA].pk).status == "sent"
        suppression = Suppression.objects.get(value=GHOST)
        assert suppression.reason == "bounced" and suppression.source.startswith("inbound")
        inbound = InboundMessage.objects.get()
        assert (inbound.kind, inbound.status_code, inbound.bounce_class) == (
            "bounce",
            "5.1.1",
            "hard",
        )
        assert inbound.matched_message_id == ghost.pk
    assert sent.lead(GHOST).status == "bounced"
    assert sent.enrollment(GHOST).status == EnrollmentStatus.STOPPED
    assert sent.enrollment(ADA).status == EnrollmentStatus.ACTIVE
    sent.schedule(later(2))  # step 2 comes due
    assert sent.sent_to(GHOST) == 1
    assert sent.sent_to(ADA) == 2


def test_a_reply_stops_the_sequence_and_an_out_of_office_does_not(
    cast: Cast, world: RealWorld
) -> None:
    world.rule(ADA, "reply")
    world.rule(GRACE, "ooo")
    sent = send_step_one(cast, world, [ADA, GRACE])  # delay_on_out_of_office off (the default)
    due_before = sent.enrollment(GRACE).next_due_at
    report = sent.poll()
    assert (report.fetched, report.processed) == (2, 2)
    with schema_context(cast.tenant.schema_name):
        kinds = dict(InboundMessage.objects.values_list("matched_message_id", "kind"))
        assert kinds == {sent.messages[ADA].pk: "reply", sent.messages[GRACE].pk: "auto_reply"}
        ooo = MessageEvent.objects.get(message_id=sent.messages[GRACE].pk, kind="auto_reply")
        assert ooo.machine_reason.endswith("sequence unchanged")
    assert sent.lead(ADA).status == "replied"
    assert sent.enrollment(ADA).status == EnrollmentStatus.STOPPED
    assert sent.enrollment(GRACE).status == EnrollmentStatus.ACTIVE
    assert sent.enrollment(GRACE).next_due_at == due_before
    sent.schedule(later(2))
    assert sent.sent_to(ADA) == 1
    assert sent.sent_to(GRACE) == 2


def test_with_the_option_on_step_two_waits_for_the_stated_return_date(
    cast: Cast, world: RealWorld
) -> None:
    world.rule(GRACE, "ooo")  # "out of the office until <ten days from now>"
    sent = send_step_one(cast, world, [GRACE, ADA], delay_on_out_of_office=True)
    assert sent.poll().processed == 1
    back = (timezone.now() + timedelta(days=10)).date()
    moved = sent.enrollment(GRACE)
    assert moved.status == EnrollmentStatus.ACTIVE
    assert moved.next_due_at == datetime.combine(back, time(), tzinfo=UTC)  # campaign tz UTC
    with schema_context(cast.tenant.schema_name):
        event = MessageEvent.objects.get(message_id=sent.messages[GRACE].pk, kind="auto_reply")
        assert event.machine_reason.startswith(f"out of office until {back.isoformat()}")
        assert "next step due" in event.machine_reason
    sent.schedule(later(2))  # step 2's own delay has passed: Ada gets it, Grace waits
    assert (sent.sent_to(ADA), sent.sent_to(GRACE)) == (2, 1)
    sent.schedule(later(10.5))
    assert sent.sent_to(GRACE) == 2


def _out_of_office(message: Message, body: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = message.to_email
    mail["To"] = ADDRESS
    mail["Subject"] = "Automatic reply: Hello"
    mail["Message-ID"] = make_msgid(domain="prospects.example")
    mail["In-Reply-To"] = message.message_id
    mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(body)
    return mail.as_bytes()


def test_a_far_return_date_is_capped_and_an_ambiguous_one_delays_nothing(
    cast: Cast, world: RealWorld, settings: object
) -> None:
    setattr(settings, "INBOUND_OOO_MAX_DELAY_DAYS", 30)  # noqa: B010 - pytest-django's settings
    sent = send_step_one(cast, world, [ADA, GRACE], delay_on_out_of_office=True)
    far = (timezone.now() + timedelta(days=120)).date().isoformat()
    world.imap.deliver(
        ADDRESS, _out_of_office(sent.messages[ADA], f"I am out of the office until {far}.")
    )
    due_grace = sent.enrollment(GRACE).next_due_at
    world.imap.deliver(
        ADDRESS, _out_of_office(sent.messages[GRACE], "I am out of the office until 05/06/2031.")
    )
    before = timezone.now()
    assert sent.poll().processed == 2
    capped = sent.enrollment(ADA).next_due_at
    assert capped is not None
    assert before + timedelta(days=30) <= capped <= timezone.now() + timedelta(days=30)
    assert sent.enrollment(GRACE).next_due_at == due_grace  # day/month unclear: not guessed
    assert sent.enrollment(ADA).status == sent.enrollment(GRACE).status == EnrollmentStatus.ACTIVE
