"""A workspace chooses its own plan while no payment provider is configured (billing page and
API); real usage on the billing page; with Stripe configured, plan changes go through Stripe."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django_tenants.utils import schema_context

from billing.entitlements import plan_for
from billing.models import Plan
from deliverability.models import Mailbox, MailboxKind
from deliverability.services.domains import add_domain
from tenants.models import AuditEvent
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for
from tests.domains.conftest import principal


def test_it_lets_the_owner_choose_a_plan_on_the_billing_page(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    response = client.post("/billing/plan/", {"plan": "growth"})
    assert response.status_code == 302 and response["Location"] == "/billing/"
    assert plan_for(cast.tenant).slug == "growth"
    event = AuditEvent.objects.filter(tenant=cast.tenant, action="billing.plan_changed").get()
    assert event.actor == cast.owner
    assert event.detail["from_plan"] == "starter" and event.detail["to_plan"] == "growth"
    assert "Your plan: Growth" in client.get("/billing/").content.decode()
    assert plan_for(cast.other_tenant).slug == "starter"


def test_it_lets_an_admin_choose_a_plan(cast: Cast) -> None:
    response = client_for(cast.admin, cast.tenant).post("/billing/plan/", {"plan": "scale"})
    assert response.status_code == 302
    assert plan_for(cast.tenant).slug == "scale"


def test_it_refuses_plan_changes_to_members_viewers_and_the_outsider(cast: Cast) -> None:
    for user in (cast.member, cast.viewer):
        assert (
            client_for(user, cast.tenant).post("/billing/plan/", {"plan": "growth"}).status_code
            == 403
        )
    outsider = client_for(cast.outsider, cast.tenant).post("/billing/plan/", {"plan": "growth"})
    assert outsider.status_code == 302 and outsider["Location"].startswith("/login/")
    assert plan_for(cast.tenant).slug == "starter"
    assert not AuditEvent.objects.filter(action="billing.plan_changed").exists()
    # The outsider's own workspace is theirs to change, and only it.
    client_for(cast.outsider, cast.other_tenant).post("/billing/plan/", {"plan": "growth"})
    assert plan_for(cast.other_tenant).slug == "growth"
    assert plan_for(cast.tenant).slug == "starter"


def test_it_answers_bad_plan_input_with_form_errors(cast: Cast) -> None:
    limits = Plan.objects.get(slug="starter").limits
    Plan.objects.create(
        slug="secret", name="Secret", monthly_price=1, limits=limits, is_public=False
    )
    client = client_for(cast.owner, cast.tenant)
    for data in (
        {},
        {"plan": "nope"},
        {"plan": "secret"},
        {"plan": "starter"},
        {"plan": "x" * 5000},
    ):
        response = client.post("/billing/plan/", data)
        assert response.status_code == 400, data
        assert response.context["form"].errors["plan"], data
    assert "already on the Starter plan" in response_text(client, {"plan": "starter"})
    assert plan_for(cast.tenant).slug == "starter"


def response_text(client: Any, data: dict[str, str]) -> str:
    return str(client.post("/billing/plan/", data).content.decode())


def test_it_refuses_a_downgrade_below_the_members_in_use(cast: Cast) -> None:
    small = Plan.objects.get(slug="starter").limits | {"members": 2}
    Plan.objects.create(slug="tiny", name="Tiny", monthly_price=1, limits=small, sort_order=99)
    response = client_for(cast.owner, cast.tenant).post("/billing/plan/", {"plan": "tiny"})
    assert response.status_code == 409
    assert "Remove members" in response.content.decode()
    assert plan_for(cast.tenant).slug == "starter"


def test_it_sends_plan_changes_to_stripe_when_stripe_is_configured(
    cast: Cast, settings: Any
) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_configured"
    client = client_for(cast.owner, cast.tenant)
    page = client.get("/billing/").content.decode()
    assert 'id="stripe-checkout"' in page and 'id="choose-plan"' not in page
    response = client.post("/billing/plan/", {"plan": "growth"})
    assert response.status_code == 409
    assert "paid for through Stripe" in response.content.decode()
    api = client_for(cast.owner, cast.tenant, api=True).post(
        "/api/v1/plan", {"plan": "growth"}, format="json"
    )
    assert_error(api, 409, "checkout_unavailable")
    assert plan_for(cast.tenant).slug == "starter"


def test_it_chooses_a_plan_by_api(cast: Cast) -> None:
    response = key_client(cast.tenant, role="admin").client.post(
        "/api/v1/plan", {"plan": "growth"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["plan"]["slug"] == "growth"
    assert plan_for(cast.tenant).slug == "growth"


def test_it_answers_bad_plan_input_by_api_with_field_errors(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    for body in ({}, {"plan": "nope"}, {"plan": "starter"}, {"plan": ["growth"]}):
        response = client.post("/api/v1/plan", body, format="json")
        assert response.status_code == 400, body
        assert "plan" in response.json()["error"]["fields"], body
    assert plan_for(cast.tenant).slug == "starter"


def test_it_refuses_plan_changes_by_api_without_billing_write(cast: Cast) -> None:
    assert_error(
        key_client(cast.tenant, role="member").client.post(
            "/api/v1/plan", {"plan": "growth"}, format="json"
        ),
        403,
    )
    outsider = client_for(cast.outsider, cast.tenant, api=True).post(
        "/api/v1/plan", {"plan": "growth"}, format="json"
    )
    assert outsider.status_code in (401, 403)
    assert plan_for(cast.tenant).slug == "starter"


def test_it_shows_what_each_limit_is_used_by(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        add_domain(principal(cast.tenant, cast.owner), name="acme-usage.test")
        Mailbox.objects.create(
            address="a@acme-usage.test", kind=MailboxKind.OTHER, smtp_host="smtp.example.com",
            smtp_port=587, smtp_password="x", sent_today=7, daily_limit=50,
            sent_on=timezone.now().date(),
        )  # fmt: skip
    response = client_for(cast.owner, cast.tenant).get("/billing/")
    usage = {line.resource: line.in_use for line in response.context["usage"]}
    assert usage == {
        "mailboxes": 1, "sending_domains": 1, "daily_sends": 7, "dedicated_ips": 0, "members": 4,
        "servers": 0,
    }  # fmt: skip
    assert '<tr id="usage-mailboxes">' in response.content.decode()
    assert "—" not in response.content.decode().split('id="current-plan"')[1].split("</table>")[0]
    # The outsider's workspace counts its own things only.
    other = client_for(cast.outsider, cast.other_tenant).get("/billing/")
    other_usage = {line.resource: line.in_use for line in other.context["usage"]}
    assert other_usage["mailboxes"] == 0 and other_usage["sending_domains"] == 0
