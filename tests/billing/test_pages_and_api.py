from __future__ import annotations

from billing.models import Plan
from billing.services.plans import change_plan
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for


def test_it_shows_the_plan_usage_and_ladder_to_the_owner(cast: Cast) -> None:
    response = client_for(cast.owner, cast.tenant).get("/billing/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Your plan: Starter" in content
    assert "Not built yet" not in content
    usage = {line.resource: line for line in response.context["usage"]}
    assert (usage["members"].in_use, usage["members"].limit) == (4, 5)
    assert (usage["mailboxes"].in_use, usage["mailboxes"].limit) == (0, 5)
    for name in ("Growth", "Scale", "Enterprise"):
        assert name in content
    assert 'id="choose-plan"' in content


def test_it_shows_an_assigned_plan(cast: Cast) -> None:
    change_plan(cast.tenant, plan=Plan.objects.get(slug="scale"), actor=None)
    content = client_for(cast.admin, cast.tenant).get("/billing/").content.decode()
    assert "Your plan: Scale" in content


def test_it_refuses_the_billing_page_to_viewers_and_members(cast: Cast) -> None:
    for user in (cast.viewer, cast.member):
        assert client_for(user, cast.tenant).get("/billing/").status_code == 403


def test_it_shows_the_outsider_nothing_of_another_tenant(cast: Cast) -> None:
    change_plan(cast.tenant, plan=Plan.objects.get(slug="scale"), actor=None)
    response = client_for(cast.outsider, cast.tenant).get("/billing/")
    assert response.status_code in (302, 403, 404)
    assert b"Scale" not in response.content
    own = client_for(cast.outsider, cast.other_tenant).get("/billing/").content.decode()
    assert "Your plan: Starter" in own
    api = client_for(cast.outsider, cast.tenant, api=True).get("/api/v1/plan")
    assert api.status_code in (401, 403)
    assert b"Scale" not in api.content


def test_it_answers_the_current_plan_by_api(cast: Cast) -> None:
    change_plan(cast.tenant, plan=Plan.objects.get(slug="growth"), actor=None)
    response = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/plan")
    assert response.status_code == 200
    body = response.json()
    assert body["plan"]["slug"] == "growth"
    assert body["plan"]["limits"]["sending_domains"] == 10
    assert body["since"] is not None
    usage = {line["resource"]: line for line in body["usage"]}
    assert usage["members"] == {"resource": "members", "label": "members", "limit": 10, "in_use": 4}
    assert usage["dedicated_ips"]["in_use"] == 0
    assert usage["servers"] == {
        "resource": "servers",
        "label": "dedicated servers",
        "limit": 1,
        "in_use": 0,
    }


def test_it_answers_the_default_plan_by_api_key(cast: Cast) -> None:
    body = key_client(cast.tenant, role="admin").client.get("/api/v1/plan/").json()
    assert body["plan"]["slug"] == "starter"
    assert body["since"] is None


def test_it_refuses_the_current_plan_to_roles_without_billing(cast: Cast) -> None:
    assert_error(key_client(cast.tenant, role="member").client.get("/api/v1/plan"), 403)
    viewer = client_for(cast.viewer, cast.tenant, api=True).get("/api/v1/plan")
    assert_error(viewer, 403, "permission_denied")


def test_it_lists_the_public_ladder_by_api(cast: Cast) -> None:
    Plan.objects.create(
        slug="secret",
        name="Secret",
        monthly_price=1,
        limits=Plan.objects.get(slug="starter").limits,
        is_public=False,
    )
    response = key_client(cast.tenant, role="viewer").client.get("/api/v1/plans")
    assert response.status_code == 200
    plans = response.json()
    assert [p["slug"] for p in plans] == ["starter", "growth", "scale", "enterprise"]
    assert plans[0]["monthly_price"] == "49.00"
    assert plans[3]["limits"]["daily_sends"] == 150_000


def test_it_refuses_the_ladder_to_anonymous_callers(cast: Cast) -> None:
    assert_error(client_for(None, cast.tenant, api=True).get("/api/v1/plans"), 401)
