"""Issue 12 item 5: bounces and complaints read from the mailbox (DSNs and ARF reports in the
real Dovecot, polled and acted on by the real services) flag and pause the mailbox, its domain
and the campaign past the PROTECTION_* lines; resuming is recorded and not re-paused."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import schema_context

from campaigns.models import Campaign, Message
from deliverability.models import (
    Mailbox,
    ProtectionEvent,
    SenderDailyStat,
    SendingDomain,
)
from deliverability.services import protection as senders
from deliverability.services.mailboxes.lifecycle import resume_mailbox
from penguinmails.alerts import Alert
from penguinmails.history.models import Transition
from tests.conftest import Cast, client_for
from tests.inbound_poll.conftest import World, arf, dsn, sent_world, verp_of
from tests.sending.conftest import DOMAIN, Sandbox, principal

pytestmark = pytest.mark.django_db(transaction=True)


def _bounce(world: World, messages: list[Message]) -> None:
    for m in messages:
        world.deliver(dsn(verp_of(world, m), m.to_email, m.message_id))
    world.poll()


def _complain(world: World, messages: list[Message]) -> None:
    for m in messages:
        world.deliver(arf(verp_of(world, m), m.to_email, m.message_id))
    world.poll()


def _now(world: World) -> tuple[Mailbox, SendingDomain, Campaign, list[ProtectionEvent]]:
    with schema_context(world.cast.tenant.schema_name):
        return (
            Mailbox.objects.get(pk=world.mailbox.pk),
            SendingDomain.objects.get(name=DOMAIN),
            Campaign.objects.get(pk=world.campaign.pk),
            list(ProtectionEvent.objects.order_by("id")),
        )


def test_it_pauses_mailbox_domain_and_campaign_past_5_percent_bounces(
    cast: Cast,
    sandbox: Sandbox,
    imap,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world = sent_world(cast, sandbox, imap, leads=100)
    with schema_context(cast.tenant.schema_name):
        row = SenderDailyStat.objects.get(mailbox_id=world.mailbox.pk)
        assert (row.sent, row.bounced) == (100, 0)
    # The five DSNs are acted on in one chunk (one transaction), judged once at its end:
    # 5 of 105, 4.76 %: past the 3 % flag line, under the 5 % pause line.
    _bounce(world, world.messages[:5])
    mailbox, domain, campaign, events = _now(world)
    assert mailbox.status == "active" and campaign.status == "running"
    assert {(e.kind, e.action) for e in events} == {
        ("mailbox", "flagged"),
        ("domain", "flagged"),
        ("campaign", "flagged"),
    }
    flagged = [e for e in events if e.kind == "mailbox"][0]
    assert (flagged.sends, flagged.bounced, flagged.metric) == (105, 5, "bounce")
    assert "4.76 %" in flagged.reason and "passed 3 %" in flagged.reason
    mail.outbox.clear()
    _bounce(world, world.messages[5:6])  # 6 of 106: 5.66 %, paused
    mailbox, domain, campaign, events = _now(world)
    assert mailbox.status == "paused" and "5.66 %" in mailbox.paused_reason
    assert campaign.status == "paused"
    assert domain.sending_paused_at is not None and "5.66 %" in domain.sending_paused_reason
    paused = [e for e in events if e.action == "paused"]
    assert {e.kind for e in paused} == {"mailbox", "domain", "campaign"}
    assert all((e.sends, e.bounced, e.rate) == (106, 6, 0.0566) for e in paused)
    with schema_context(cast.tenant.schema_name):
        moves = Transition.objects.filter(object_type="campaigns.campaign", to_status="paused")
        assert "Automatically paused" in moves.get().reason
    recipients = {r for m in mail.outbox for r in m.to}
    assert cast.owner.email in recipients
    assert any("paused" in m.subject for m in mail.outbox)
    # The alert engine: one protection.paused alert per paused object, on acme's dashboard.
    connection.set_schema_to_public()
    alerts = Alert.objects.filter(rule="protection.paused", tenant_schema=cast.tenant.schema_name)
    assert {a.subject.split(":")[0] for a in alerts} == {"mailbox", "domain", "campaign"}
    assert all(a.state == "firing" for a in alerts)
    # Nothing more is sent: the send checks hold the campaign's messages.
    with schema_context(cast.tenant.schema_name):
        from django.utils import timezone  # noqa: PLC0415

        from campaigns.sending import checks  # noqa: PLC0415

        m = world.messages[50]
        item = checks.Item(
            m.pk, m.lead_id, m.step_id, m.variant_id, m.mailbox_id, m.to_email, None, 0,
            timezone.now(),
        )  # fmt: skip
        passing, stops = checks.run_checks(
            checks.Context(cast.tenant, campaign, timezone.now()), [item]
        )
        assert passing == [] and stops[0].check == "campaign_running"
        held = checks.mailbox_healthy(checks.Context(cast.tenant, campaign, timezone.now()), [item])
        assert "is paused: Automatically paused" in held[0].reason
    # Resume: recorded, and the old figures do not pause again (the safety net runs too).
    with schema_context(cast.tenant.schema_name):
        resume_mailbox(principal(cast), mailbox)
        senders.resume_domain(principal(cast), domain)
        from campaigns.services import campaigns as svc  # noqa: PLC0415 - test only

        svc.resume_campaign(principal(cast), campaign)
        from campaigns.services.protection import evaluate_tenant  # noqa: PLC0415

        assert evaluate_tenant() == []
    mailbox, domain, campaign, events = _now(world)
    assert mailbox.status == "active" and campaign.status == "running"
    assert domain.sending_paused_at is None
    resumed = [e for e in events if e.action == "resumed"]
    assert {e.kind for e in resumed} == {"mailbox", "domain", "campaign"}
    assert all(e.actor == cast.owner.email for e in resumed)
    connection.set_schema_to_public()
    assert {a.state for a in alerts.all()} == {"resolved"}  # resumed: resolved
    _bounce(world, world.messages[6:7])  # a new bounce after the resume: 1 send, no judgement
    mailbox, _, campaign, _ = _now(world)
    assert mailbox.status == "active" and campaign.status == "running"


def test_99_sends_with_10_bounces_change_nothing(
    cast: Cast,
    sandbox: Sandbox,
    imap,  # type: ignore[no-untyped-def]
) -> None:
    world = sent_world(cast, sandbox, imap, leads=89)
    _bounce(world, world.messages[:10])  # 89 sent + 10 bounced = 99 sends
    mailbox, domain, campaign, events = _now(world)
    assert events == [] and mailbox.status == "active" and campaign.status == "running"
    assert domain.sending_paused_at is None


def test_complaints_flag_past_0_1_and_pause_past_0_3_percent(
    cast: Cast,
    sandbox: Sandbox,
    imap,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.PROTECTION_COMPLAINT_PAUSE_BP = 150  # 1.5 %: one complaint in 100 only flags
    world = sent_world(cast, sandbox, imap, leads=100)
    _complain(world, world.messages[:1])
    mailbox, _, campaign, events = _now(world)
    assert mailbox.status == "active" and campaign.status == "running"
    assert {(e.kind, e.action, e.metric) for e in events} >= {("mailbox", "flagged", "complaint")}
    settings.PROTECTION_COMPLAINT_PAUSE_BP = 30
    _complain(world, world.messages[1:2])
    mailbox, _, campaign, events = _now(world)
    assert mailbox.status == "paused" and campaign.status == "paused"
    paused = [e for e in events if e.action == "paused" and e.kind == "mailbox"][0]
    assert (paused.complained, paused.metric, paused.rate) == (2, "complaint", 0.02)


def test_a_held_domain_is_stopped_by_the_send_check_until_resumed(
    cast: Cast,
    sandbox: Sandbox,
    imap,  # type: ignore[no-untyped-def]
) -> None:
    from django.utils import timezone  # noqa: PLC0415

    from campaigns.sending import checks  # noqa: PLC0415

    world = sent_world(cast, sandbox, imap, leads=2)
    with schema_context(cast.tenant.schema_name):
        domain = SendingDomain.objects.get(name=DOMAIN)
        senders._hold_domain(domain, "held by the test")
        m = world.messages[0]
        item = checks.Item(
            m.pk, m.lead_id, m.step_id, m.variant_id, m.mailbox_id, m.to_email, None, 0,
            timezone.now(),
        )  # fmt: skip
        ctx = checks.Context(cast.tenant, world.campaign, timezone.now())
        passing, stops = checks.run_checks(ctx, [item])
        assert passing == [] and "is paused: held by the test" in stops[0].reason
    page = client_for(cast.owner, cast.tenant).get(f"/domains/{domain.pk}/")
    assert page.status_code == 200 and b"held by the test" in page.content
    assert b"Resume sending" in page.content
    stranger = client_for(cast.outsider, cast.tenant).get(f"/domains/{domain.pk}/")
    assert stranger.status_code != 200 and b"held by the test" not in stranger.content
    foreign = client_for(cast.outsider, cast.other_tenant, api=True)
    assert foreign.post(f"/api/v1/domains/{domain.pk}/resume").status_code == 404
    viewer = client_for(cast.viewer, cast.tenant, api=True)
    assert viewer.post(f"/api/v1/domains/{domain.pk}/resume").status_code == 403
    owner = client_for(cast.owner, cast.tenant, api=True)
    body = owner.get(f"/api/v1/domains/{domain.pk}").json()
    assert body["sending_paused_reason"] == "held by the test"
    body = owner.post(f"/api/v1/domains/{domain.pk}/resume").json()
    assert body["sending_paused_at"] is None
    with schema_context(cast.tenant.schema_name):
        ctx = checks.Context(cast.tenant, world.campaign, timezone.now())
        stops = checks.run_checks(ctx, [item])[1]
        assert not [s for s in stops if "paused" in s.reason]
        history = Transition.objects.filter(object_type="deliverability.sendingdomain")
        reasons = list(history.values_list("reason", flat=True))
        assert any("sending held" in r for r in reasons)
        assert any("sending resumed by" in r for r in reasons)


def test_sender_rates_in_the_api_and_nothing_for_an_outsider(
    cast: Cast,
    sandbox: Sandbox,
    imap,  # type: ignore[no-untyped-def]
) -> None:
    world = sent_world(cast, sandbox, imap, leads=4)
    _bounce(world, world.messages[:1])
    client = client_for(cast.owner, cast.tenant, api=True)
    body = client.get("/api/v1/stats/senders?by=mailbox&days=7").json()
    row = [r for r in body["senders"] if r["key"] == world.mailbox.pk][0]
    assert (row["sent"], row["bounced"], row["bounce_rate"]) == (4, 1, 0.2)
    box = client.get(f"/api/v1/mailboxes/{world.mailbox.pk}").json()
    assert (box["rates_30d"]["bounced"], box["rates_30d"]["bounce_rate"]) == (1, 0.2)
    assert box["protection"] == {"level": "ok", "reason": ""}
    body = client.get("/api/v1/stats/senders?by=domain").json()
    assert [r["label"] for r in body["senders"]] == [DOMAIN]
    assert client.get("/api/v1/stats/senders?by=planet").status_code == 400
    assert client.get("/api/v1/stats/senders?days=0").status_code == 400
    outsider = client_for(cast.outsider, cast.tenant, api=True)
    assert outsider.get("/api/v1/stats/senders").status_code in (401, 403, 404)
    other = client_for(cast.outsider, cast.other_tenant, api=True)
    assert other.get("/api/v1/stats/senders").json()["senders"] == []
