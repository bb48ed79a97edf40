"""The billing page (and `GET /api/v1/billing/subscription`) shows the next invoice's amount and
date, as Stripe previews it (`invoices.create_preview` at the local Stripe); without an answer
from Stripe, the date alone."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from billing.models import Plan
from tenants.models import Tenant
from tests.conftest import client_for
from tests.stripe.conftest import StripeWorld
from tests.stripe.test_checkout import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def next_invoice(world: StripeWorld, tenant: Tenant | None = None) -> str | None:
    cast = world.cast
    user = cast.owner if tenant is None else cast.outsider
    response = client_for(user, tenant or cast.tenant).get("/billing/")
    assert response.status_code == 200
    found = re.search(r'<span id="next-invoice">([^<]*)</span>', response.content.decode())
    return found.group(1) if found else None


def test_it_shows_the_next_invoice_of_the_plan_and_interval_and_after_a_change(
    world: StripeWorld,
) -> None:
    growth, scale = Plan.objects.get(slug="growth"), Plan.objects.get(slug="scale")
    assert next_invoice(world) is None  # no subscription yet: nothing to preview
    sub = subscribe(world, "growth", "month")
    remote = world.client.v1.subscriptions.retrieve(sub.stripe_subscription_id).to_dict()
    assert sub.current_period_end is not None
    day = sub.current_period_end.strftime("%Y-%m-%d")
    assert remote["current_period_end"] == int(sub.current_period_end.timestamp())
    assert next_invoice(world) == f"Next invoice: {growth.monthly_price:.2f} USD on {day}."

    # After an upgrade the page shows Stripe's new preview (the new price, less the unused time
    # the proration credited): Stripe's arithmetic, not ours. A preview changes nothing, so the
    # page shows the same amount again, and the credit is still there for the real invoice.
    cast = world.cast
    response = client_for(cast.owner, cast.tenant).post(
        "/billing/checkout/", {"plan": "scale", "interval": "month"}
    )
    assert response.status_code == 302
    world.wait_for("customer.subscription.updated")
    world.deliver()
    preview = world.client.v1.invoices.create_preview(
        params={"customer": sub.stripe_customer_id, "subscription": sub.stripe_subscription_id}
    ).to_dict()
    amount = Decimal(preview["amount_due"]) / 100
    assert growth.monthly_price < amount < scale.monthly_price
    for _ in range(2):
        assert next_invoice(world) == f"Next invoice: {amount:.2f} USD on {day}."

    # The outsider's own billing page has no subscription and so no next invoice.
    assert next_invoice(world, cast.other_tenant) is None


def test_a_yearly_subscription_previews_the_yearly_price(world: StripeWorld) -> None:
    growth = Plan.objects.get(slug="growth")
    subscribe(world, "growth", "year")
    shown = next_invoice(world)
    assert shown is not None and shown.startswith(f"Next invoice: {growth.price_per_year:.2f} USD")
    cast = world.cast
    state = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/billing/subscription")
    assert state.json()["next_invoice"]["amount"] == f"{growth.price_per_year:.2f}"
    assert state.json()["next_invoice"]["currency"] == "usd"
    theirs = client_for(cast.outsider, cast.other_tenant, api=True).get(
        "/api/v1/billing/subscription"
    )
    assert theirs.json()["next_invoice"] is None


def test_without_an_answer_from_stripe_the_page_shows_the_date_alone(
    world: StripeWorld, settings: Any
) -> None:
    sub = subscribe(world)
    assert sub.current_period_end is not None
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nobody listens
    response = client_for(world.cast.owner, world.cast.tenant).get("/billing/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="next-invoice"' not in page
    assert f"Next invoice {sub.current_period_end:%Y-%m-%d}." in page
