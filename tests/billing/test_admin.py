from __future__ import annotations

import pytest
from django.test import Client

from billing.entitlements import plan_for
from billing.models import Plan, TenantPlan
from tenants.models import User
from tests.conftest import PASSWORD, Cast, client_for


@pytest.fixture
def admin_client(cast: Cast) -> Client:
    staff = User.objects.create_superuser("staff@penguinmails.example.com", PASSWORD)
    return client_for(staff, None)


def test_it_validates_plan_limits_in_the_admin(admin_client: Client) -> None:
    plan = Plan.objects.get(slug="growth")
    data = {
        "slug": "growth",
        "name": "Growth",
        "monthly_price": "149.00",
        "limits": '{"mailboxes": -1, "warmup": "yes"}',
        "is_public": "on",
        "sort_order": "20",
    }
    response = admin_client.post(f"/admin/billing/plan/{plan.pk}/change/", data)
    assert response.status_code == 200
    content = response.content.decode()
    assert "missing: api_access" in content
    assert "mailboxes must be a whole number" in content
    plan.refresh_from_db()
    assert plan.limits["mailboxes"] == 25


def test_it_changes_a_tenants_plan_through_the_admin(cast: Cast, admin_client: Client) -> None:
    growth = Plan.objects.get(slug="growth")
    response = admin_client.post(
        "/admin/billing/tenantplan/add/", {"tenant": cast.tenant.pk, "plan": growth.pk}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert plan_for(cast.tenant) == growth
    row = TenantPlan.objects.get(tenant=cast.tenant)
    assert row.changed_by is not None and row.changed_by.is_staff
    assert admin_client.get("/admin/billing/tenantplan/").status_code == 200


def test_it_refuses_a_downgrade_below_usage_in_the_admin(cast: Cast, admin_client: Client) -> None:
    pair = Plan.objects.create(
        slug="pair",
        name="Pair",
        monthly_price=0,
        limits={**Plan.objects.get(slug="starter").limits, "members": 2},
        is_public=False,
    )
    response = admin_client.post(
        "/admin/billing/tenantplan/add/", {"tenant": cast.tenant.pk, "plan": pair.pk}
    )
    assert response.status_code == 200
    assert "has 4 members" in response.content.decode()
    assert not TenantPlan.objects.filter(tenant=cast.tenant).exists()
