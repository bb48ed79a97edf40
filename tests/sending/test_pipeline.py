"""The send path end to end with the real sandbox SMTP server: the message's headers, each step
once, the state machine's outcomes (5xx bounce, 4xx retry, header injection), the checks."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import (
    CampaignDailyStat,
    CampaignLead,
    CampaignStatus,
    EnrollmentStatus,
    Lead,
    LeadStatus,
    Message,
    MessageStatus,
    Suppression,
    SuppressionReason,
)
from campaigns.sending import scheduler
from campaigns.services import campaigns as svc
from deliverability.models import Mailbox, MailboxStatus
from penguinmails.models import Job
from tests.conftest import Cast
from tests.sending.conftest import (
    DOMAIN,
    Sandbox,
    drain,
    make_campaign,
    principal,
    run_send_jobs,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_sends_every_step_once_with_the_required_headers(cast: Cast, sandbox: Sandbox) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=3, steps=2, track_opens=True)
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    received = sandbox.messages()
    assert len(received) == 6
    with schema_context(cast.tenant.schema_name):
        messages = list(Message.objects.filter(campaign=campaign))
        assert {m.status for m in messages} == {MessageStatus.SENT}
        assert len({(m.lead_id, m.step_id) for m in messages}) == 6
        assert set(CampaignLead.objects.values_list("status", flat=True)) == {
            EnrollmentStatus.FINISHED
        }
        stats = CampaignDailyStat.objects.filter(campaign=campaign)
        assert sum(s.sent for s in stats) == 6
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.COMPLETED
        ids = {m.message_id for m in messages}
    first = received[0]
    assert first.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in first.iter_parts()] == ["text/plain", "text/html"]
    assert first["Message-ID"] in ids and first["Message-ID"].endswith(f"@{DOMAIN}>")
    assert first["Date"] and first["Reply-To"].endswith(f"@{DOMAIN}")
    assert first["From"].startswith("Sam Sender")
    assert first["Subject"].startswith("Hello Lead")
    unsubscribe = first["List-Unsubscribe"]
    # https in production (TRACKING_BASE_URL or the verified tracking host); the test settings
    # use the local platform URL.
    assert "/t/u/" in unsubscribe and "<mailto:sender" in unsubscribe
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = first.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "/t/c/" in html and "/t/o/" in html and "https://example.org/offer" not in html


def test_it_bounces_a_5xx_and_retries_a_4xx(cast: Cast, sandbox: Sandbox) -> None:
    async def handle_RCPT(server, session, envelope, address, options):  # type: ignore[no-untyped-def]  # noqa: ANN001, N802
        if address.startswith("gone"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    sandbox.controller.handler.handle_RCPT = handle_RCPT
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(
            cast,
            sandbox,
            steps=1,
            emails=["gone@example.com", "busy@example.com", "ok@example.com"],
        )
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        by_to = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
        gone, busy, ok = (
            by_to["gone@example.com"],
            by_to["busy@example.com"],
            by_to["ok@example.com"],
        )
        assert gone.status == MessageStatus.BOUNCED and gone.smtp_code == 550
        assert Suppression.objects.get(value="gone@example.com").reason == SuppressionReason.BOUNCED
        assert Lead.objects.get(email="gone@example.com").status == LeadStatus.BOUNCED
        assert CampaignLead.objects.get(lead__email="gone@example.com").status == "stopped"
        assert busy.status == MessageStatus.QUEUED and busy.attempts == 1
        assert busy.smtp_code == 451 and busy.message_id
        assert busy.scheduled_for > ok.sent_at  # type: ignore[operator]
        assert ok.status == MessageStatus.SENT
        first_id = busy.message_id
        # The retry reuses the Message-ID: let the backoff pass and the server accept it.
        Message.objects.filter(pk=busy.pk).update(scheduled_for=ok.sent_at)
        retry_job = busy.job_id
    Job.objects.filter(pk=retry_job).update(run_at=timezone.now())
    sandbox.controller.handler.handle_RCPT = None  # type: ignore[assignment]
    del sandbox.controller.handler.handle_RCPT
    drain(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        busy.refresh_from_db()
        assert busy.status == MessageStatus.SENT and busy.attempts == 2
        assert busy.message_id == first_id
    assert [m["Message-ID"] for m in sandbox.messages() if m["To"] == "busy@example.com"] == [
        first_id
    ]


def test_it_refuses_a_header_with_a_line_break_before_smtp(cast: Cast, sandbox: Sandbox) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(
            cast, sandbox, steps=1, emails=["x@example.com\r\nbcc: victim@example.net"]
        )
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    assert sandbox.messages() == []
    with schema_context(cast.tenant.schema_name):
        message = Message.objects.get(campaign=campaign)
        assert message.status == MessageStatus.FAILED
        assert message.stopped_by == "header_injection"


def test_it_skips_suppressed_leads_and_holds_for_a_paused_mailbox(
    cast: Cast, sandbox: Sandbox
) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(
            cast, sandbox, steps=1, mailboxes=1, emails=["a@blocked.example", "b@example.com"]
        )
        svc.start_campaign(principal(cast), campaign)
        scheduler.schedule_tenant(cast.tenant, only_due=False)
        assert Message.objects.filter(campaign=campaign).count() == 2
        # Between scheduling and sending: the domain is suppressed, the mailbox paused.
        Suppression.objects.create(value="blocked.example", is_domain=True, reason="manual")
        Mailbox.objects.update(status=MailboxStatus.PAUSED, paused_reason="by hand")
    run_send_jobs(cast.tenant)
    assert sandbox.messages() == []
    with schema_context(cast.tenant.schema_name):
        by_to = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
        skipped, held = by_to["a@blocked.example"], by_to["b@example.com"]
        assert (skipped.status, skipped.stopped_by) == (MessageStatus.SKIPPED, "lead_sendable")
        assert "blocked.example" in skipped.stop_reason
        assert (held.status, held.stopped_by) == (MessageStatus.QUEUED, "mailbox_healthy")
        assert held.job_id is None
        Mailbox.objects.update(status=MailboxStatus.ACTIVE)
    drain(cast.tenant)
    assert [m["To"] for m in sandbox.messages()] == ["b@example.com"]


def test_it_stops_on_reply_and_counts_the_reply(cast: Cast, sandbox: Sandbox) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=1, steps=2)
        # The second step waits a day: the reply comes in between.
        step = campaign.steps.get(order=2)
        step.delay_amount, step.delay_unit = 1, "days"
        step.save()
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    assert len(sandbox.messages()) == 1
    with schema_context(cast.tenant.schema_name):
        lead = Lead.objects.get()
        svc.mark_lead_replied(principal(cast), lead.pk)
        svc.mark_lead_replied(principal(cast), lead.pk)  # idempotent
        enrollment = CampaignLead.objects.get()
        assert enrollment.status == EnrollmentStatus.STOPPED
        assert Message.objects.get().replied_at is not None
        assert sum(CampaignDailyStat.objects.values_list("replied", flat=True)) == 1


@pytest.mark.parametrize(
    ("switches", "parts", "pixel"),
    [
        ({}, ["text/plain", "text/html"], False),  # a new campaign does not track opens
        ({"track_opens": True}, ["text/plain", "text/html"], True),
        ({"plain_text_only": True, "track_opens": True}, [], False),
    ],
)
def test_it_sends_what_the_campaign_switches_say(
    cast: Cast, sandbox: Sandbox, switches: dict[str, bool], parts: list[str], pixel: bool
) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=1, steps=1, **switches)
        svc.start_campaign(principal(cast), campaign)
    drain(cast.tenant)
    [message] = sandbox.messages()
    assert [p.get_content_type() for p in message.iter_parts()] == parts
    if parts:
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert ("/t/o/" in html) is pixel and "/t/c/" in html
    else:  # text alone, its link as written
        assert message.get_content_type() == "text/plain"
        assert "https://example.org/offer" in message.get_content()  # type: ignore[attr-defined]
