"""Each event is emitted where it happens and reaches a subscribed endpoint: a campaign run
(message.sent, campaign.completed), a reply, a bounce and a complaint read from the mailbox
(reply.received, message.bounced, message.complained), an unsubscribe (lead.unsubscribed), a
lead import (import.finished), opens and clicks through the tracking flush (message.opened,
message.clicked)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Message
from campaigns.services import campaigns as campaign_svc
from campaigns.tracking import links
from campaigns.tracking.flush import flush
from campaigns.tracking.unsubscribe import unsubscribe_message
from deliverability.services import inbound_store
from tests.conftest import Cast
from tests.inbound_poll.conftest import arf, dsn
from tests.leads.conftest import csv_bytes, upload
from tests.leads.conftest import run_jobs as run_import_jobs
from tests.sending.conftest import (
    Sandbox,
    drain,
    make_campaign,
    sandbox,  # noqa: F401  (fixture)
)
from tests.sending.conftest import principal as owner_principal
from tests.tracking.conftest import Sent, call, empty_buffer, sent  # noqa: F401  (fixtures)
from tests.webhooks.conftest import Receiver, make_endpoint, run_deliveries
from webhooks.events import Event

ALL = list(Event.values)


def events_of(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


@pytest.mark.django_db(transaction=True)
def test_a_campaign_run_and_its_feedback_emit_their_events(
    cast: Cast,
    receiver: Receiver,
    sandbox: Sandbox,  # noqa: F811
) -> None:
    make_endpoint(cast.tenant, cast.owner, receiver.url, events=ALL)
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=4, steps=1, mailboxes=1)
        campaign_svc.start_campaign(owner_principal(cast), campaign)
    drain(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        first, second, third, fourth = Message.objects.filter(campaign=campaign).order_by("id")
        mailbox = first.mailbox
        reply = (
            f"From: {first.to_email}\r\nTo: {mailbox.address}\r\nSubject: Re: hello\r\n"
            f"Message-ID: <reply-1@example.com>\r\nIn-Reply-To: {first.message_id}\r\n\r\n"
            "Sounds good, call me tomorrow.\r\n"
        ).encode()
        bounce = dsn(mailbox.address, third.to_email, third.message_id)
        complaint = arf(mailbox.address, fourth.to_email, fourth.message_id)
        inbound_store.store(mailbox, "INBOX", 1, [(1, reply), (2, bounce), (3, complaint)])
        inbound_store.process_pending(cast.tenant, mailbox)
        unsubscribe_message(second.pk, source="link")

    run_deliveries()

    got = events_of(receiver)
    assert Counter(e["type"] for e in got) == {
        "message.sent": 4, "campaign.completed": 1, "reply.received": 1, "lead.unsubscribed": 1,
        "message.bounced": 1, "message.complained": 1,
    }  # fmt: skip
    sends = [e["data"] for e in got if e["type"] == "message.sent"]
    assert {d["message_id"] for d in sends} == {first.pk, second.pk, third.pk, fourth.pk}
    assert {d["to"] for d in sends} == {m.to_email for m in (first, second, third, fourth)}
    assert all(d["campaign_id"] == campaign.pk for d in sends)
    [done] = [e["data"] for e in got if e["type"] == "campaign.completed"]
    assert done["campaign_id"] == campaign.pk
    [replied] = [e["data"] for e in got if e["type"] == "reply.received"]
    assert (replied["message_id"], replied["lead_id"]) == (first.pk, first.lead_id)
    [bounced] = [e["data"] for e in got if e["type"] == "message.bounced"]
    assert (bounced["message_id"], bounced["source"]) == (third.pk, "inbound")
    [complained] = [e["data"] for e in got if e["type"] == "message.complained"]
    assert (complained["message_id"], complained["to"]) == (fourth.pk, fourth.to_email)
    [gone] = [e["data"] for e in got if e["type"] == "lead.unsubscribed"]
    assert (gone["lead_id"], gone["email"]) == (second.lead_id, second.to_email)


@pytest.mark.django_db(transaction=True)
def test_an_smtp_rejection_emits_message_bounced(
    cast: Cast,
    receiver: Receiver,
    sandbox: Sandbox,  # noqa: F811
) -> None:
    async def handle_rcpt(server, session, envelope, address, options):  # type: ignore[no-untyped-def]  # noqa: ANN001
        return "550 5.1.1 No such user"  # the receiving server refuses the address for good

    sandbox.controller.handler.handle_RCPT = handle_rcpt
    make_endpoint(cast.tenant, cast.owner, receiver.url, events=["message.bounced"])
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, steps=1, mailboxes=1,
                                 emails=["bounce-550@example.com"])  # fmt: skip
        campaign_svc.start_campaign(owner_principal(cast), campaign)
    drain(cast.tenant)
    run_deliveries()
    [event] = events_of(receiver)
    assert event["type"] == "message.bounced"
    assert event["data"]["to"] == "bounce-550@example.com"
    assert (event["data"]["source"], event["data"]["smtp_code"]) == ("smtp", 550)


@pytest.mark.django_db(transaction=True)
def test_a_finished_import_emits_import_finished(cast: Cast, receiver: Receiver) -> None:
    make_endpoint(cast.tenant, cast.owner, receiver.url, events=["import.finished"])
    lead_import = upload(cast, csv_bytes("email,first_name\nann@example.com,Ann\nbad,Bo\n"))
    run_import_jobs()
    run_deliveries()
    [event] = events_of(receiver)
    assert event["type"] == "import.finished"
    data = event["data"]
    assert (data["import_id"], data["status"]) == (lead_import.pk, "completed")
    assert (data["created"], data["failed"]) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_opens_and_clicks_are_emitted_by_the_tracking_flush(
    cast: Cast,
    receiver: Receiver,
    sent: Sent,  # noqa: F811
) -> None:
    make_endpoint(
        cast.tenant, cast.owner, receiver.url, events=["message.opened", "message.clicked"]
    )
    base = "https://track.customer.test"
    call(
        "GET", links.open_url(base, sent.tenant.pk, sent.pk), headers={"User-Agent": "Thunderbird"}
    )
    target = "https://example.com/pricing"
    call(
        "GET",
        links.click_url(base, sent.tenant.pk, sent.pk, target),
        headers={"User-Agent": "Thunderbird"},
    )
    flush()
    run_deliveries()
    got = {e["type"]: e["data"] for e in events_of(receiver)}
    assert set(got) == {"message.opened", "message.clicked"}
    assert got["message.opened"]["message_id"] == sent.pk
    assert got["message.clicked"]["url"] == target
