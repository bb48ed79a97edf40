"""A failed payment (Stripe's invoice.payment_failed) opens "billing.payment_failed" for the
invoice, on the tenant's dashboard only; invoice.paid resolves it."""

from __future__ import annotations

import json
import time

import pytest

from billing.models import Subscription
from penguinmails.alerts import Alert, AlertState
from tests.conftest import client_for
from tests.stripe.conftest import (  # noqa: F401 - the fixtures
    StripeWorld,
    local_stripe,
    run_jobs,
    sign,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _send(world: StripeWorld, event_id: str, kind: str, invoice: dict[str, object]) -> None:  # noqa: F811
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": invoice},
        }
    ).encode()
    assert world.post(body, sign(body, at=int(time.time()))).status_code == 200
    run_jobs()


def test_a_failed_payment_opens_the_alert_and_the_paid_invoice_resolves_it(
    world: StripeWorld,  # noqa: F811
) -> None:
    cast = world.cast
    response = client_for(cast.owner, cast.tenant).post(
        "/billing/checkout/", {"plan": "growth", "interval": "month"}
    )
    assert world.pay(response["Location"], card="4000000000000341").status_code == 303
    world.wait_for("checkout.session.completed")
    world.deliver()
    sub = Subscription.objects.get(tenant=cast.tenant)
    invoice = world.client.v1.invoices.list(params={"customer": sub.stripe_customer_id}).data[0]
    _send(world, "evt_alert_failed_1", "invoice.payment_failed", invoice.to_dict())

    alert = Alert.objects.get(rule="billing.payment_failed", subject=f"invoice:{invoice.id}")
    assert alert.state == AlertState.FIRING and alert.tenant_schema == cast.tenant.schema_name
    page = client_for(cast.owner, cast.tenant).get("/").content.decode()
    assert "update the card in Billing" in page
    other = client_for(cast.outsider, cast.other_tenant).get("/").content.decode()
    assert "update the card in Billing" not in other

    _send(world, "evt_alert_paid_1", "invoice.paid", {**invoice.to_dict(), "status": "paid"})
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolution == "invoice.paid"
