"""The whole grace path over simulated days: a renewal fails at the local Stripe, the tenant
keeps sending with a banner and reminders on days 0, 3 and 6, its campaigns pause on day 7, its
server is stopped on day 30; paying the invoice restores the server, then the campaigns the
ladder paused (only those), and sending."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.entitlements import plan_for
from billing.models import Dunning, DunningStep, Payment, Subscription
from billing.services import dunning, stripe_sync
from campaigns.models import Campaign, EmailTemplate, Message
from campaigns.services import campaigns as svc
from infrastructure.models import VpsInstance
from infrastructure.providers import LocalProvider, ServerStatus
from tenants.services.tenancy import sending_hold
from tests.billing_grace.conftest import make_server
from tests.conftest import client_for
from tests.sending.conftest import Sandbox, drain, make_campaign, principal
from tests.stripe.conftest import StripeWorld, run_jobs, sign
from tests.stripe.test_checkout import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def fail_renewal(world: StripeWorld) -> Subscription:
    """The customer's next renewal is charged to a failing card, through the portal page."""
    cast = world.cast
    portal = client_for(cast.owner, cast.tenant).post("/billing/portal/")
    assert portal.status_code == 302, portal.content
    sub = Subscription.objects.get(tenant=cast.tenant)
    answer = httpx.post(
        portal["Location"] + "/renew",
        data={"subscription": sub.stripe_subscription_id, "fail": "1"},
    )
    assert answer.status_code == 303, answer.text
    world.wait_for("invoice.payment_failed")
    world.deliver()
    sub.refresh_from_db()
    return sub


def pay_overdue(world: StripeWorld) -> None:
    failed = Payment.objects.get(tenant=world.cast.tenant, status="failed")
    assert failed.invoice_url.startswith(world.server.url + "/invoice/in_")
    answer = httpx.post(failed.invoice_url, data={"card": "4242424242424242"})
    assert answer.status_code == 303, answer.text
    world.wait_for("invoice.paid", count=2)  # the first was the subscription's first invoice
    world.deliver()


def page(world: StripeWorld, path: str = "/") -> str:
    return client_for(world.cast.owner, world.cast.tenant).get(path).content.decode()


def kinds(world: StripeWorld) -> list[tuple[int, str]]:
    steps = DunningStep.objects.filter(tenant=world.cast.tenant).order_by("at", "pk")
    return [(s.day, s.kind) for s in steps]


def test_the_whole_grace_path_then_payment_restores_everything(
    world: StripeWorld, sandbox: Sandbox, provider: LocalProvider
) -> None:
    cast = world.cast
    subscribe(world)
    server = make_server(world, provider)
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=2, steps=2, mailboxes=1)
        # A last step two days later keeps the campaign running through the ladder.
        template = EmailTemplate.objects.get()
        svc.add_step(principal(cast), campaign, delay_amount=2, delay_unit="days",
                     variants=[(template.pk, 1)])  # fmt: skip
        svc.start_campaign(principal(cast), campaign)
        paused_by_hand = make_campaign(
            cast, sandbox, steps=1, mailboxes=1, name="Mine", emails=["mine@example.org"]
        )
        svc.start_campaign(principal(cast), paused_by_hand)
        svc.pause_campaign(principal(cast), paused_by_hand)
    mail.outbox.clear()

    # Day 0: the renewal fails; still sending, a banner on every page, the first email.
    sub = fail_renewal(world)
    assert sub.status == "past_due" and plan_for(cast.tenant).slug == "growth"
    state = Dunning.objects.get(tenant=cast.tenant)
    assert state.status == "grace" and state.since is not None
    assert sending_hold(cast.tenant) == ""
    for path in ("/", "/billing/", "/campaigns/"):
        assert 'id="billing-banner"' in page(world, path), path
    assert "Your payment failed. Campaigns pause on" in page(world)
    assert [m.to for m in mail.outbox] == [[cast.owner.email]]
    assert mail.outbox[0].subject == "Your PenguinMails payment failed"
    assert kinds(world) == [(0, "past_due")]
    drain(cast.tenant)
    assert len(sandbox.messages()) == 4  # the grace period sends: 2 leads x 2 steps

    since = state.since
    # Days 1 to 6: reminders on days 3 and 6 only, each once.
    for day in (1, 2, 3, 3, 4, 5, 6, 6):
        dunning.advance(now=since + timedelta(days=day, hours=1))
    assert kinds(world) == [(0, "past_due"), (3, "email"), (6, "email")]
    assert len(mail.outbox) == 3 and sending_hold(cast.tenant) == ""

    # Day 7: campaigns pause (the one paused by hand is not the ladder's), sending is held.
    dunning.advance(now=since + timedelta(days=7, hours=1))
    state.refresh_from_db()
    assert state.status == "sending_paused"
    assert state.stopped["sending"]["campaigns.running"] == {"campaigns": [campaign.pk]}
    with schema_context(cast.tenant.schema_name):
        assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert sending_hold(cast.tenant) == dunning.HOLD_REASON
    assert "campaign sending is paused" in page(world)
    api = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/billing/subscription").json()
    assert api["dunning"]["status"] == "sending_paused"
    assert api["dunning"]["pay_url"].startswith(world.server.url + "/invoice/")
    assert [s["kind"] for s in api["dunning"]["steps"]][:2] == ["sending_paused", "email"]
    other = client_for(cast.outsider, cast.other_tenant, api=True)
    theirs = other.get("/api/v1/billing/subscription").json()["dunning"]
    assert theirs == {"status": "clear", "since": None, "pay_url": "", "steps": []}
    assert server.status == "active" and provider.get_server(server.provider_id).status == "active"

    # Days 8 to 29: nothing more; day 30: the server is stopped, its IPs kept.
    dunning.advance(now=since + timedelta(days=29))
    assert VpsInstance.objects.get(pk=server.pk).status == "active"
    dunning.advance(now=since + timedelta(days=30, hours=1))
    state.refresh_from_db()
    assert state.status == "suspended"
    assert VpsInstance.objects.get(pk=server.pk).status == "suspended"
    stopped = provider.get_server(server.provider_id)
    assert stopped.status is ServerStatus.STOPPED and stopped.main_ip
    assert "your servers are stopped" in page(world, "/billing/")
    assert [k for _, k in kinds(world)][-2:] == ["sending_paused", "suspended"]

    # The tenant pays the overdue invoice: server started, the ladder's campaign resumed.
    pay_overdue(world)
    sub.refresh_from_db()
    state.refresh_from_db()
    assert sub.status == "active" and state.status == "clear" and state.stopped == {}
    assert VpsInstance.objects.get(pk=server.pk).status == "active"
    assert provider.get_server(server.provider_id).status is ServerStatus.ACTIVE
    with schema_context(cast.tenant.schema_name):
        assert Campaign.objects.get(pk=campaign.pk).status == "running"
        assert Campaign.objects.get(pk=paused_by_hand.pk).status == "paused"
    assert sending_hold(cast.tenant) == ""
    assert 'id="billing-banner"' not in page(world)
    assert kinds(world)[-1][1] == "restored"
    billing_page = page(world, "/billing/")
    assert "Paid: sending and servers are back." in billing_page
    assert "Past overdue payments" in billing_page


def test_paying_during_the_grace_period_ends_it_without_pausing_anything(
    world: StripeWorld, sandbox: Sandbox
) -> None:
    cast = world.cast
    subscribe(world)
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=1, steps=1, mailboxes=1)
        svc.start_campaign(principal(cast), campaign)
    fail_renewal(world)
    state = Dunning.objects.get(tenant=cast.tenant)
    dunning.advance(now=state.since + timedelta(days=3))
    pay_overdue(world)
    state.refresh_from_db()
    assert state.status == "clear"
    assert [k for _, k in kinds(world)] == ["past_due", "email", "restored"]
    # A later run (day 7 of the old round) does nothing: the ladder is clear.
    assert dunning.advance(now=state.since + timedelta(days=8)) == []
    with schema_context(cast.tenant.schema_name):
        assert Campaign.objects.get(pk=campaign.pk).status == "running"
        assert Message.objects.filter(stopped_by="tenant_active").count() == 0


def test_payment_action_required_asks_to_authenticate_with_the_hosted_invoice(
    world: StripeWorld,
) -> None:
    cast = world.cast
    subscribe(world)
    fail_renewal(world)
    payment = Payment.objects.get(tenant=cast.tenant, status="failed")
    invoice = world.client.v1.invoices.retrieve(payment.stripe_invoice_id).to_dict()
    assert invoice["status"] == "open"
    body = json.dumps(
        {
            "id": "evt_action_required_1",
            "object": "event",
            "type": "invoice.payment_action_required",
            "created": int(time.time()),
            "data": {"object": invoice},
        }
    ).encode()
    assert world.post(body, sign(body, at=int(time.time()))).status_code == 200
    run_jobs()
    payment.refresh_from_db()
    assert payment.status == "action_required"
    html = page(world)
    assert "Your bank asks you to authenticate the latest payment." in html
    assert f'href="{payment.invoice_url}"' in html
    assert kinds(world)[-1][1] == "action_required"
    # Another workspace sees no banner of acme's.
    other = client_for(cast.outsider, cast.other_tenant).get("/").content.decode()
    assert 'id="billing-banner"' not in other
    # The outsider on acme's host sees nothing (sent to log in).
    assert client_for(cast.outsider, cast.tenant).get("/billing/").status_code == 302


def test_unpaid_keeps_the_plan_and_the_ladder_a_cancellation_keeps_the_ladder(
    world: StripeWorld,
) -> None:
    """Stripe's own dunning may end in `unpaid` or `canceled`: unpaid no longer drops the tenant
    to the default plan (the ladder decides what it may do); a canceled subscription does, but
    the ladder stays where it is until the tenant pays a new one."""
    cast = world.cast
    sub = subscribe(world)
    remote = world.client.v1.subscriptions.retrieve(sub.stripe_subscription_id).to_dict()
    later = timezone.now() + timedelta(seconds=5)
    stripe_sync.apply_subscription({**remote, "status": "unpaid"}, source="test", as_of=later)
    assert plan_for(cast.tenant).slug == "growth"
    state = Dunning.objects.get(tenant=cast.tenant)
    assert state.status == "grace" and kinds(world) == [(0, "past_due")]
    dunning.escalate(cast.tenant)
    stripe_sync.apply_subscription(
        {**remote, "status": "canceled"}, source="test", as_of=later + timedelta(seconds=5)
    )
    assert plan_for(cast.tenant).slug == "starter"
    state.refresh_from_db()
    assert state.status == "sending_paused"
    assert sending_hold(cast.tenant) == dunning.HOLD_REASON
