"""`/webhooks/stripe/`: real signatures from the local Stripe, wrong and too old ones, the same
event twice, subscription updates out of order, the replay action."""

from __future__ import annotations

import json
import time

import pytest

from billing.models import StripeEvent, Subscription
from billing.services.stripe_events import replay
from penguinmails.models import Job
from tests.stripe.conftest import StripeWorld, run_jobs, sign
from tests.stripe.test_checkout import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def a_real_event(world: StripeWorld) -> tuple[bytes, str]:
    world.client.v1.customers.create(params={"email": "hook@acme.test"})
    world.wait_for("customer.created")
    body, signature = next(
        (b, s) for b, s in world.captured() if json.loads(b)["type"] == "customer.created"
    )
    return body, signature


def test_it_stores_an_event_signed_by_the_local_stripe_once(world: StripeWorld) -> None:
    body, signature = a_real_event(world)
    first = world.post(body, signature)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    again = world.post(body, signature)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    event_id = json.loads(body)["id"]
    assert StripeEvent.objects.filter(event_id=event_id).count() == 1


def test_the_same_handled_event_twice_is_processed_once(world: StripeWorld) -> None:
    subscribe(world)
    body, signature = next(
        (b, s)
        for b, s in world.captured()
        if json.loads(b)["type"] == "customer.subscription.created"
    )
    jobs = Job.objects.filter(task="billing.stripe_event").count()
    assert world.post(body, signature).json()["duplicate"] is True
    assert Job.objects.filter(task="billing.stripe_event").count() == jobs
    assert Subscription.objects.count() == 1


def test_it_refuses_a_wrong_missing_or_too_old_signature_and_stores_nothing(
    world: StripeWorld,
) -> None:
    body, signature = a_real_event(world)
    now = int(time.time())
    tampered = body.replace(b"hook@acme.test", b"evil@acme.test")
    for payload, header in (
        (tampered, signature),  # the body changed after signing
        (body, sign(body, at=now, secret="whsec_wrong")),
        (body, ""),
        (body, "garbage"),
        (body, sign(body, at=now - 301)),  # outside the 5 minutes' tolerance
    ):
        response = world.post(payload, header)
        assert response.status_code == 400, header
        assert response.json()["error"]["code"] == "bad_signature"
    assert not StripeEvent.objects.exists()
    # The same hand-made signature inside the tolerance is accepted: the refusal was the age.
    assert world.post(body, sign(body, at=now - 250)).status_code == 200


def test_subscription_updates_out_of_order_end_in_stripes_latest_state(
    world: StripeWorld,
) -> None:
    sub = subscribe(world)
    remote = world.client.v1.subscriptions.retrieve(sub.stripe_subscription_id)
    item = remote["items"]["data"][0]["id"]
    scale = sub.plan.__class__.objects.get(slug="scale").stripe_price_monthly_id
    enterprise = sub.plan.__class__.objects.get(slug="enterprise").stripe_price_monthly_id
    for price in (scale, enterprise):
        world.client.v1.subscriptions.update(
            sub.stripe_subscription_id, params={"items": [{"id": item, "price": price}]}
        )
        item = world.client.v1.subscriptions.retrieve(sub.stripe_subscription_id)["items"]["data"][
            0
        ]["id"]
    world.wait_for("customer.subscription.updated", count=2)
    updates = [
        (b, s)
        for b, s in world.captured()[world.posted :]
        if json.loads(b)["type"] == "customer.subscription.updated"
    ]
    assert [json.loads(b)["data"]["object"]["items"]["data"][0]["price"]["id"] for b, _ in
            updates] == [scale, enterprise]  # fmt: skip
    for body, signature in reversed(updates):  # the newer first, the older last
        assert world.post(body, signature).status_code == 200
    run_jobs()
    sub.refresh_from_db()
    assert sub.plan.slug == "enterprise" and sub.status == "active"
    assert StripeEvent.objects.filter(type="customer.subscription.updated").count() == 2
    assert set(
        StripeEvent.objects.filter(type="customer.subscription.updated").values_list(
            "status", flat=True
        )
    ) == {"processed"}


def test_staff_replay_processes_an_event_again(world: StripeWorld) -> None:
    subscribe(world)
    event = StripeEvent.objects.get(type="checkout.session.completed")
    assert event.status == "processed"
    replay(event, actor=None)
    event.refresh_from_db()
    assert event.status == "received"
    assert run_jobs() == 1
    event.refresh_from_db()
    assert event.status == "processed"
    assert Subscription.objects.count() == 1
