"""A failed payment (Stripe's invoice.payment_failed) opens "billing.payment_failed" for the
invoice as a staff alert; the tenant sees one banner, the dunning ladder's, never a second one
from the alert engine; invoice.paid resolves the alert."""

from __future__ import annotations

import re

import pytest

from penguinmails.alerts import Alert, AlertState
from tests.billing_grace.test_grace import fail_renewal, pay_overdue
from tests.conftest import client_for
from tests.stripe.conftest import StripeWorld, local_stripe, world  # noqa: F401 - the fixtures
from tests.stripe.test_checkout import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def banners(page: str) -> list[str]:
    return re.findall(r'<div class="banner banner-\w+" role="alert"[^>]*>', page)


def test_a_failed_renewal_shows_one_truthful_banner_and_a_staff_alert_until_paid(
    world: StripeWorld,  # noqa: F811
) -> None:
    cast = world.cast
    subscribe(world)
    fail_renewal(world)

    alert = Alert.objects.get(rule="billing.payment_failed", state=AlertState.FIRING)
    assert alert.tenant_schema == ""  # staff only: not drawn on the tenant's dashboard
    assert alert.detail["tenant"] == cast.tenant.schema_name
    assert cast.tenant.name in alert.summary and "the plan is kept" in alert.summary
    assert "update the card" not in alert.summary

    page = client_for(cast.owner, cast.tenant).get("/").content.decode()
    assert banners(page) == ['<div class="banner banner-warn" role="alert" id="billing-banner">'], (
        banners(page)
    )
    assert "Your payment failed. Campaigns pause on" in page
    assert 'data-alert="billing.payment_failed"' not in page
    other = client_for(cast.outsider, cast.other_tenant).get("/").content.decode()
    assert banners(other) == []

    cast.admin.is_staff = cast.admin.is_superuser = True
    cast.admin.save()
    admin = client_for(cast.admin, None).get("/admin/").content.decode()
    assert "billing.payment_failed" in admin and cast.tenant.name in admin

    pay_overdue(world)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolution == "invoice.paid"
    assert banners(client_for(cast.owner, cast.tenant).get("/").content.decode()) == []
