from __future__ import annotations

import pytest
from django.db import connection

from billing.entitlements import (
    LimitReached,
    Resource,
    limits_for,
    plan_for,
    require_capacity,
    require_feature,
)
from billing.models import Plan, TenantPlan
from tests.conftest import Cast


def test_it_seeds_the_plan_ladder(cast: Cast) -> None:
    ladder = list(Plan.objects.filter(is_public=True).values_list("slug", flat=True))
    assert ladder == ["starter", "growth", "scale", "enterprise"]
    prices = [p.monthly_price for p in Plan.objects.filter(is_public=True)]
    assert prices == sorted(prices)
    mailboxes = [p.parsed_limits.mailboxes for p in Plan.objects.filter(is_public=True)]
    assert mailboxes == [5, 25, 100, 500]


def test_it_puts_a_tenant_without_a_plan_on_the_entry_plan(cast: Cast) -> None:
    assert not TenantPlan.objects.filter(tenant=cast.tenant).exists()
    assert plan_for(cast.tenant).slug == "starter"
    limits = limits_for(cast.tenant)
    assert limits.sending_domains == 2
    assert limits.dedicated_ips == 0
    assert limits.vps_size == "shared"


def test_it_reads_an_assigned_plan(cast: Cast) -> None:
    TenantPlan.objects.create(tenant=cast.tenant, plan=Plan.objects.get(slug="scale"))
    assert limits_for(cast.tenant).mailboxes == 100
    assert plan_for(cast.other_tenant).slug == "starter"


def test_it_allows_up_to_the_limit(cast: Cast) -> None:
    require_capacity(cast.tenant, Resource.SENDING_DOMAINS, in_use=1)
    require_capacity(cast.tenant, Resource.MAILBOXES, in_use=0, adding=5)


def test_it_names_the_limit_the_plan_and_the_upgrade(cast: Cast) -> None:
    with pytest.raises(LimitReached) as refused:
        require_capacity(cast.tenant, Resource.SENDING_DOMAINS, in_use=2)
    assert refused.value.message == (
        "Your Starter plan allows 2 sending domains (2 in use). "
        "Upgrade to Growth for up to 10 sending domains."
    )
    assert refused.value.status_code == 402
    assert refused.value.code == "limit_reached"


def test_it_skips_plans_that_would_not_fit_either(cast: Cast) -> None:
    with pytest.raises(LimitReached) as refused:
        require_capacity(cast.tenant, Resource.MAILBOXES, in_use=3, adding=30)
    assert "Upgrade to Scale for up to 100 mailboxes." in refused.value.message


def test_it_explains_a_resource_the_plan_lacks(cast: Cast) -> None:
    with pytest.raises(LimitReached) as refused:
        require_capacity(cast.tenant, Resource.DEDICATED_IPS, in_use=0)
    assert refused.value.message == (
        "Your Starter plan includes no dedicated IPs. Upgrade to Growth for up to 1 dedicated IP."
    )


def test_it_says_when_no_plan_lifts_the_limit(cast: Cast) -> None:
    TenantPlan.objects.create(tenant=cast.tenant, plan=Plan.objects.get(slug="enterprise"))
    with pytest.raises(LimitReached) as refused:
        require_capacity(cast.tenant, Resource.DAILY_SENDS, in_use=150_000)
    assert "allows 150,000 daily sends (150,000 sent today)" in refused.value.message
    assert "contact support" in refused.value.message


def test_it_refuses_a_feature_the_plan_lacks(cast: Cast) -> None:
    with pytest.raises(LimitReached) as refused:
        require_feature(cast.tenant, "warmup")
    assert refused.value.message == (
        "Your Starter plan does not include warm-up. Upgrade to Growth to get it."
    )
    require_feature(cast.tenant, "api_access")
    TenantPlan.objects.create(tenant=cast.tenant, plan=Plan.objects.get(slug="growth"))
    require_feature(cast.tenant, "warmup")


def test_it_answers_from_a_tenant_schema_too(cast: Cast) -> None:
    connection.set_tenant(cast.tenant)
    try:
        assert plan_for(cast.tenant).slug == "starter"
    finally:
        connection.set_schema_to_public()
