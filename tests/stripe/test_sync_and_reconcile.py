"""`plans sync-stripe` is idempotent; `billing reconcile` fixes drift and reports it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.entitlements import plan_for
from billing.models import Plan, Subscription
from tests.stripe.conftest import StripeWorld
from tests.stripe.test_checkout import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def ids() -> list[tuple[str, str, str]]:
    return list(
        Plan.objects.order_by("pk").values_list(
            "stripe_product_id", "stripe_price_monthly_id", "stripe_price_yearly_id"
        )
    )


def test_sync_stripe_twice_creates_nothing_new(world: StripeWorld) -> None:
    before = ids()
    assert all(all(row) for row in before)
    prices = len(world.client.v1.prices.list(params={"limit": 100}).data)
    assert prices == 2 * Plan.objects.count()
    assert (
        run("plans", "sync-stripe")
        .strip()
        .endswith(f"0 created, 0 archived, {3 * Plan.objects.count()} unchanged.")
    )
    assert ids() == before
    assert len(world.client.v1.prices.list(params={"limit": 100}).data) == prices


def test_sync_stripe_makes_a_new_price_when_a_plan_price_changes(world: StripeWorld) -> None:
    growth = Plan.objects.get(slug="growth")
    old = growth.stripe_price_monthly_id
    Plan.objects.filter(pk=growth.pk).update(monthly_price=159)
    out = run("plans", "sync-stripe")
    assert "created price growth/month" in out and f"archived price growth/month {old}" in out
    growth.refresh_from_db()
    assert growth.stripe_price_monthly_id != old
    price = world.client.v1.prices.retrieve(growth.stripe_price_monthly_id)
    assert price.unit_amount == 15900
    assert world.client.v1.prices.retrieve(old).active is False


def test_sync_stripe_without_a_key_exits_non_zero(world: StripeWorld, settings: object) -> None:
    settings.STRIPE_SECRET_KEY = ""  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        run("plans", "sync-stripe")


def test_reconcile_fixes_what_webhooks_missed(world: StripeWorld) -> None:
    sub = subscribe(world)
    item = world.client.v1.subscriptions.retrieve(sub.stripe_subscription_id)["items"]["data"][0]
    scale = Plan.objects.get(slug="scale").stripe_price_monthly_id
    world.client.v1.subscriptions.update(
        sub.stripe_subscription_id, params={"items": [{"id": item["id"], "price": scale}]}
    )
    out = run("billing", "reconcile")  # the update's webhook is never delivered
    assert f"{sub.stripe_subscription_id} (acme): plan -> scale" in out
    sub.refresh_from_db()
    assert sub.plan.slug == "scale" and plan_for(world.cast.tenant).slug == "scale"
    assert run("billing", "reconcile").strip() == "0 fix(es)."
    # A subscription we hold that Stripe no longer has is canceled here.
    Subscription.objects.filter(pk=sub.pk).update(stripe_subscription_id="sub_gone")
    world.client.v1.subscriptions.cancel(sub.stripe_subscription_id)
    out = run("billing", "reconcile")
    assert "sub_gone (acme): gone at Stripe: canceled" in out
