"""Subscribe through Checkout and the pay page, change plan with proration, trials, the portal,
a downgrade below usage; invoices become payments."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest
from django_tenants.utils import schema_context

from billing.entitlements import LimitReached, plan_for
from billing.models import Payment, Plan, Subscription
from deliverability.models import SendingDomain
from deliverability.services.domains import add_domain
from tests.conftest import client_for
from tests.domains.conftest import principal
from tests.stripe.conftest import StripeWorld, run_jobs, sign

pytestmark = pytest.mark.django_db(transaction=True)


def subscribe(world: StripeWorld, plan: str = "growth", interval: str = "month") -> Subscription:
    cast = world.cast
    response = client_for(cast.owner, cast.tenant).post(
        "/billing/checkout/", {"plan": plan, "interval": interval}
    )
    assert response.status_code == 302, response.content
    pay_url = response["Location"]
    assert pay_url.startswith(world.server.url + "/pay/cs_test_")
    assert world.pay(pay_url).status_code == 303
    world.wait_for("checkout.session.completed")
    world.deliver()
    return Subscription.objects.get(tenant=cast.tenant)


def test_it_subscribes_through_checkout_and_puts_the_tenant_on_the_plan(
    world: StripeWorld,
) -> None:
    cast = world.cast
    page = client_for(cast.owner, cast.tenant).get("/billing/").content.decode()
    assert 'id="stripe-checkout"' in page and 'id="no-subscription"' in page
    sub = subscribe(world)
    assert sub.status == "active" and sub.plan.slug == "growth" and sub.interval == "month"
    assert plan_for(cast.tenant).slug == "growth"
    assert plan_for(cast.other_tenant).slug == "starter"
    remote = world.client.v1.subscriptions.retrieve(sub.stripe_subscription_id)
    assert (
        remote["items"]["data"][0]["price"]["id"]
        == Plan.objects.get(slug="growth").stripe_price_monthly_id
    )
    page = client_for(cast.owner, cast.tenant).get("/billing/").content.decode()
    assert "Your plan: Growth" in page and 'id="subscription"' in page


def test_it_records_the_paid_invoice_as_a_payment(world: StripeWorld) -> None:
    sub = subscribe(world, "growth", "year")
    payment = Payment.objects.get(tenant=world.cast.tenant)
    invoices = world.client.v1.invoices.list(params={"customer": sub.stripe_customer_id})
    assert payment.stripe_invoice_id == invoices.data[0].id
    assert payment.status == "paid" and payment.paid_at is not None
    assert payment.amount == Decimal("1490.00") and payment.currency == "usd"
    assert payment.subscription_id == sub.pk
    api = client_for(world.cast.owner, world.cast.tenant, api=True)
    rows = api.get("/api/v1/billing/invoices").json()["results"]
    assert [r["id"] for r in rows] == [payment.pk] and rows[0]["status"] == "paid"
    state = api.get("/api/v1/billing/subscription").json()
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["interval"] == "year" and state["plan"] == "growth"


def test_it_changes_plan_in_place_with_proration(world: StripeWorld) -> None:
    sub = subscribe(world)
    cast = world.cast
    response = client_for(cast.owner, cast.tenant).post(
        "/billing/checkout/", {"plan": "scale", "interval": "month"}
    )
    assert response.status_code == 302 and response["Location"] == "/billing/"
    sub.refresh_from_db()
    assert sub.plan.slug == "scale" and plan_for(cast.tenant).slug == "scale"
    assert Subscription.objects.filter(tenant=cast.tenant).count() == 1
    remote = world.client.v1.subscriptions.retrieve(sub.stripe_subscription_id)
    assert remote["items"]["data"][0]["price"]["id"] == sub.stripe_price_id
    world.wait_for("customer.subscription.updated")
    world.deliver()
    sub.refresh_from_db()
    assert sub.plan.slug == "scale" and sub.status == "active"


def test_it_starts_a_trial_where_the_plan_has_one(world: StripeWorld) -> None:
    Plan.objects.filter(slug="growth").update(trial_days=14)
    sub = subscribe(world)
    assert sub.status == "trialing" and sub.trial_end is not None
    assert plan_for(world.cast.tenant).slug == "growth"
    assert not Payment.objects.filter(tenant=world.cast.tenant, status="paid", amount__gt=0)


def test_a_downgrade_below_usage_blocks_new_domains_and_says_what_to_remove(
    world: StripeWorld,
) -> None:
    subscribe(world)
    cast = world.cast
    owner = principal(cast.tenant, cast.owner)
    with schema_context(cast.tenant.schema_name):
        for n in range(3):
            add_domain(owner, name=f"down{n}.test")
    response = client_for(cast.owner, cast.tenant).post(
        "/billing/checkout/", {"plan": "starter", "interval": "month"}
    )
    assert response.status_code == 302
    assert plan_for(cast.tenant).slug == "starter"
    page = client_for(cast.owner, cast.tenant).get("/billing/").content.decode()
    assert 'id="over-sending_domains"' in page and "remove 1" in page
    with schema_context(cast.tenant.schema_name):
        try:
            add_domain(owner, name="down3.test")
        except LimitReached:
            pass
        else:
            raise AssertionError("a fourth domain was allowed on Starter")
        assert SendingDomain.objects.count() == 3  # nothing deleted
    over = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/billing/subscription")
    assert [line["resource"] for line in over.json()["over_limits"]] == ["sending_domains"]


def test_the_portal_cancels_and_the_tenant_returns_to_the_default_plan(
    world: StripeWorld,
) -> None:
    sub = subscribe(world)
    cast = world.cast
    response = client_for(cast.owner, cast.tenant).post("/billing/portal/")
    assert response.status_code == 302
    portal = response["Location"]
    assert portal.startswith(world.server.url + "/portal/bps_")
    assert sub.stripe_subscription_id in httpx.get(portal).text
    done = httpx.post(portal, data={"cancel": sub.stripe_subscription_id})
    assert done.status_code == 303 and done.headers["location"].endswith("/billing/")
    world.wait_for("customer.subscription.deleted")
    world.deliver()
    sub.refresh_from_db()
    assert sub.status == "canceled"
    assert plan_for(cast.tenant).slug == "starter"


def test_it_answers_bad_checkout_input_with_form_errors(world: StripeWorld) -> None:
    client = client_for(world.cast.owner, world.cast.tenant)
    for data in ({}, {"plan": "nope", "interval": "month"}, {"plan": "growth", "interval": "x"}):
        response = client.post("/billing/checkout/", data)
        assert response.status_code == 400, data
    assert not Subscription.objects.exists()


def test_a_failing_card_leaves_the_subscription_incomplete_and_the_payment_failed(
    world: StripeWorld,
) -> None:
    cast = world.cast
    response = client_for(cast.owner, cast.tenant).post(
        "/billing/checkout/", {"plan": "growth", "interval": "month"}
    )
    assert world.pay(response["Location"], card="4000000000000341").status_code == 303
    world.wait_for("checkout.session.completed")
    world.deliver()
    sub = Subscription.objects.get(tenant=cast.tenant)
    assert sub.status == "incomplete"
    assert plan_for(cast.tenant).slug == "starter"  # nothing paid, no plan
    # localstripe records the declined invoice but sends no invoice.payment_failed: we sign one
    # around Stripe's own invoice object, as Stripe would send it.
    invoice = world.client.v1.invoices.list(params={"customer": sub.stripe_customer_id}).data[0]
    body = json.dumps(
        {
            "id": "evt_failed_payment_1",
            "object": "event",
            "type": "invoice.payment_failed",
            "created": int(time.time()),
            "data": {"object": invoice.to_dict()},
        }
    ).encode()
    assert world.post(body, sign(body, at=int(time.time()))).status_code == 200
    run_jobs()
    payment = Payment.objects.get(tenant=cast.tenant)
    assert payment.status == "failed" and payment.paid_at is None
    assert payment.stripe_invoice_id == invoice.id and payment.subscription_id == sub.pk


def test_a_dispute_then_a_refund_move_the_payment(world: StripeWorld) -> None:
    subscribe(world)
    payment = Payment.objects.get(tenant=world.cast.tenant)
    assert payment.stripe_charge_id.startswith("ch_")
    # localstripe sends neither event: we sign them around Stripe's own objects.
    dispute = {"id": "dp_local_1", "object": "dispute", "charge": payment.stripe_charge_id}
    world.client.v1.refunds.create(params={"charge": payment.stripe_charge_id})
    charge = world.client.v1.charges.retrieve(payment.stripe_charge_id).to_dict()
    assert charge["refunded"] is True
    for n, (kind, obj) in enumerate(
        (("charge.dispute.created", dispute), ("charge.refunded", charge))
    ):
        body = json.dumps(
            {
                "id": f"evt_charge_{n}",
                "object": "event",
                "type": kind,
                "created": int(time.time()),
                "data": {"object": obj},
            }
        ).encode()
        assert world.post(body, sign(body, at=int(time.time()))).status_code == 200
        run_jobs()
        payment.refresh_from_db()
        assert payment.status == ("disputed" if kind == "charge.dispute.created" else "refunded")
