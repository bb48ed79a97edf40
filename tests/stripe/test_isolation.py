"""An outsider tenant sees nothing of another's billing: page, API, checkout, portal."""

from __future__ import annotations

import pytest

from billing.entitlements import plan_for
from billing.models import Payment, Subscription
from tests.api.conftest import key_client
from tests.conftest import client_for
from tests.stripe.conftest import StripeWorld
from tests.stripe.test_checkout import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_outsider_sees_and_changes_nothing_of_anothers_billing(world: StripeWorld) -> None:
    sub = subscribe(world)
    cast = world.cast
    payment = Payment.objects.get(tenant=cast.tenant)
    # On the tenant's host the outsider is no member: sent to log in, API refused.
    page = client_for(cast.outsider, cast.tenant).get("/billing/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")
    for path in ("/api/v1/billing/subscription", "/api/v1/billing/invoices"):
        response = client_for(cast.outsider, cast.tenant, api=True).get(path)
        assert response.status_code in (401, 403), path
        assert sub.stripe_subscription_id not in response.content.decode()
    for path in ("/billing/checkout/", "/billing/portal/"):
        response = client_for(cast.outsider, cast.tenant).post(path, {"plan": "scale"})
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    # In its own workspace it sees its own (empty) billing only.
    own = client_for(cast.outsider, cast.other_tenant, api=True)
    assert own.get("/api/v1/billing/invoices").json()["results"] == []
    state = own.get("/api/v1/billing/subscription").json()
    assert state["subscription"] is None and state["plan"] == "starter"
    own_page = client_for(cast.outsider, cast.other_tenant).get("/billing/").content.decode()
    assert f"payment-{payment.pk}" not in own_page and "Growth, billed" not in own_page
    # Members without billing write cannot start a checkout or open the portal.
    for user in (cast.member, cast.viewer):
        for path in ("/billing/checkout/", "/billing/portal/"):
            response = client_for(user, cast.tenant).post(path, {"plan": "scale"})
            assert response.status_code == 403, (user, path)
    assert (
        key_client(cast.tenant, role="member").client.get("/api/v1/billing/invoices").status_code
        == 403
    )
    sub.refresh_from_db()
    assert sub.plan.slug == "growth" and plan_for(cast.tenant).slug == "growth"
    assert plan_for(cast.other_tenant).slug == "starter"
    assert Subscription.objects.count() == 1
