"""Margins from known costs and invoices: per tenant and totals (command, staff page), the staff
alerts when a tenant costs more than it pays or falls under the floor (and their resolution),
and the plans' allocation check."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from billing.entitlements import plan_for
from billing.models import Payment, Plan, Subscription
from billing.services import margins
from infrastructure.models import IpAddress, VpsInstance
from penguinmails.alerts import open_alerts
from tenants.models import Tenant, User
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

NOW = timezone.now()
MONTH = f"{NOW:%Y-%m}"


def server(tenant: Tenant, name: str, cents: int, ips: tuple[int, ...] = ()) -> VpsInstance:
    vps = VpsInstance.objects.create(
        tenant=tenant,
        provider="local",
        name=name,
        hostname=f"mail.{name}.test",
        size="small",
        status="active",
        monthly_cost_cents=cents,
    )
    for n, ip_cents in enumerate(ips):
        IpAddress.objects.create(
            vps=vps,
            tenant=tenant,
            address=f"10.77.{vps.pk % 250}.{n + 1}",
            status="active",
            monthly_cost_cents=ip_cents,
        )
    return vps


def paid(tenant: Tenant, amount: str, *, interval: str = "month", at: dt.datetime = NOW) -> None:
    plan = plan_for(tenant)
    n = Payment.objects.count() + 1
    sub = Subscription.objects.create(
        tenant=tenant,
        plan=plan,
        stripe_subscription_id=f"sub_m{n}",
        stripe_customer_id=f"cus_m{tenant.pk}",
        stripe_price_id="price_x",
        interval=interval,
        status="active",
        as_of=at,
    )
    Payment.objects.create(
        tenant=tenant,
        subscription=sub,
        stripe_invoice_id=f"in_m{n}",
        amount=Decimal(amount),
        currency="usd",
        status="paid",
        paid_at=at,
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command("billing", *args, stdout=out)
    return out.getvalue()


def test_it_computes_each_tenants_margin_and_the_totals(cast: Cast) -> None:
    server(cast.tenant, "acme-m1", 1099, ips=(0, 400))  # $10.99 + $4.00
    paid(cast.tenant, "149.00")
    paid(cast.tenant, "10.00", at=NOW - dt.timedelta(days=40))  # another month: not counted
    server(cast.other_tenant, "globex-m1", 8999)  # $89.99, nothing paid
    report = json.loads(run("margins", "--month", MONTH, "--json"))
    rows = {r["tenant"]: r for r in report["tenants"]}
    assert rows["acme"]["revenue"] == "149.00" and rows["acme"]["cost"] == "14.99"
    assert rows["acme"]["costs"] == {"servers": "10.99", "ips": "4.00"}
    assert rows["acme"]["margin"] == "134.01" and rows["acme"]["margin_percent"] == "89.9"
    assert rows["globex"]["revenue"] == "0.00" and rows["globex"]["margin"] == "-89.99"
    assert rows["globex"]["margin_percent"] is None
    assert [r["tenant"] for r in report["tenants"]] == ["globex", "acme"]  # worst first
    assert report["totals"] == {
        "revenue": "149.00",
        "cost": "104.98",
        "margin": "44.02",
        "margin_percent": "29.5",
    }
    text = run("margins", "--month", MONTH)
    assert "acme: revenue $149.00, cost $14.99, margin $134.01 (89.9%)" in text
    assert "Total: revenue $149.00, cost $104.98, margin $44.02 (29.5%); 2 tenant(s)." in text


def test_a_yearly_invoice_counts_a_twelfth_in_each_of_its_twelve_months(cast: Cast) -> None:
    paid(cast.tenant, "1200.00", interval="year", at=dt.datetime(2026, 3, 15, tzinfo=dt.UTC))
    assert margins.margins("2026-02").rows == []
    for month in ("2026-03", "2026-09", "2027-02"):
        assert [r.revenue for r in margins.margins(month).rows] == [Decimal("100.00")], month
    assert margins.margins("2027-03").rows == []


def test_staff_are_alerted_when_a_tenant_costs_more_than_it_pays_or_is_under_the_floor(
    cast: Cast, settings: Any
) -> None:
    settings.BILLING_MARGIN_FLOOR = 20
    acme_vps = server(cast.tenant, "acme-m2", 12000)  # $120 against $149: 19.5% margin
    paid(cast.tenant, "149.00")
    globex_vps = server(cast.other_tenant, "globex-m2", 8999)
    found = margins.alert_margins(MONTH)
    assert {(c.rule, c.row.tenant) for c in found} == {
        ("billing.cost_over_revenue", "globex"),
        ("billing.margin_low", "acme"),
    }
    alerts = {(a.rule, a.subject): a for a in open_alerts()}
    over = alerts[("billing.cost_over_revenue", "tenant:globex")]
    assert over.severity == "critical" and over.tenant_schema in (None, "")
    assert over.summary == f"{MONTH}: globex cost $89.99 against $0.00 of revenue"
    assert alerts[("billing.margin_low", "tenant:acme")].summary.endswith(
        "acme's margin is 19.5% (floor 20%)"
    )
    # Again: the same alerts, refreshed, not doubled.
    margins.alert_margins(MONTH)
    assert open_alerts().filter(rule__startswith="billing.").count() == 2
    # Costs fall back under the floor: both resolve by themselves.
    VpsInstance.objects.filter(pk=acme_vps.pk).update(monthly_cost_cents=1099)
    VpsInstance.objects.filter(pk=globex_vps.pk).update(
        status="terminated", updated_at=NOW - dt.timedelta(days=60)
    )
    assert margins.alert_margins(MONTH) == []
    assert not open_alerts().filter(rule__startswith="billing.").exists()


def test_the_command_refuses_a_bad_month(cast: Cast) -> None:
    with pytest.raises(CommandError, match="YYYY-MM"):
        run("margins", "--month", "2026-13")


def test_check_plans_passes_for_the_ladder_and_names_a_plan_that_costs_more(cast: Cast) -> None:
    plan_for(cast.tenant)  # the seeded ladder
    text = run("check-plans")
    assert "growth: price $149.00, allocation $10.99: ok" in text
    Plan.objects.create(
        slug="tiny-dedicated",
        name="Tiny dedicated",
        monthly_price=Decimal("5.00"),
        is_public=False,
        sort_order=99,
        limits={**Plan.objects.get(slug="growth").limits, "vps_size": "large", "vps_count": 1},
    )
    with pytest.raises(CommandError, match=r"tiny-dedicated \(\$89.99 > \$5.00\)"):
        run("check-plans")


def test_the_staff_page_shows_the_margins_and_refuses_everyone_else(cast: Cast) -> None:
    server(cast.other_tenant, "globex-m3", 8999)
    paid(cast.tenant, "49.00")
    staff = User.objects.create_user(
        "staff@penguinmails.test", "pw", is_staff=True, is_superuser=True
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    payments = client.get("/admin/billing/payment/").content.decode()
    assert 'href="/admin/billing/payment/margins/" id="margins-link"' in payments
    page = client.get(f"/admin/billing/payment/margins/?month={MONTH}")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="margin-globex"' in html and "billing.cost_over_revenue" in html
    assert "$-89.99" in html and 'id="margin-acme"' in html
    assert client.get("/admin/billing/payment/margins/?month=nope").status_code == 400
    outsider = Client(HTTP_HOST="localhost")
    outsider.force_login(cast.outsider)
    answer = outsider.get("/admin/billing/payment/margins/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
