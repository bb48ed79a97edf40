from __future__ import annotations

from typing import Any

import pytest

from billing.entitlements import LimitReached, plan_for
from billing.models import Plan, TenantPlan
from billing.services.plans import change_plan
from penguinmails.errors import Conflict
from tenants.models import AuditEvent, Invitation, Role
from tenants.services.access import principal_for_membership
from tenants.services.apikeys import create_api_key
from tenants.services.invitations import invite_member
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for


def _owner(cast: Cast) -> Any:
    return principal_for_membership(cast.owner.memberships.get(tenant=cast.tenant))


def _no_api_plan() -> Plan:
    limits = {**Plan.objects.get(slug="starter").limits, "api_access": False}
    return Plan.objects.create(
        slug="lite", name="Lite", monthly_price=9, limits=limits, is_public=False
    )


def test_it_changes_a_plan_and_audits_it(cast: Cast) -> None:
    growth = Plan.objects.get(slug="growth")
    change_plan(cast.tenant, plan=growth, actor=cast.owner)
    assert plan_for(cast.tenant) == growth
    event = AuditEvent.objects.get(tenant=cast.tenant, action="billing.plan_changed")
    assert event.detail == {"from_plan": "starter", "to_plan": "growth"}
    assert event.actor == cast.owner
    change_plan(cast.tenant, plan=Plan.objects.get(slug="starter"), actor=None)
    assert plan_for(cast.tenant).slug == "starter"
    assert TenantPlan.objects.filter(tenant=cast.tenant).count() == 1


def test_it_refuses_to_change_to_the_same_plan(cast: Cast) -> None:
    with pytest.raises(Conflict, match="already on the Starter plan"):
        change_plan(cast.tenant, plan=Plan.objects.get(slug="starter"), actor=None)


def test_it_refuses_a_downgrade_below_the_members_in_use(cast: Cast) -> None:
    tiny = Plan.objects.create(
        slug="solo",
        name="Solo",
        monthly_price=0,
        limits={**Plan.objects.get(slug="starter").limits, "members": 3},
        is_public=False,
    )
    with pytest.raises(Conflict) as refused:
        change_plan(cast.tenant, plan=tiny, actor=None)
    assert refused.value.message == (
        "Acme Agency has 4 members (including pending invitations); the Solo plan allows 3. "
        "Remove members or revoke invitations first."
    )
    assert not TenantPlan.objects.filter(tenant=cast.tenant).exists()
    assert not AuditEvent.objects.filter(action="billing.plan_changed").exists()


def test_it_blocks_an_invitation_beyond_the_members_limit(cast: Cast) -> None:
    owner = _owner(cast)
    member_role = Role.objects.get(tenant=None, slug="member")
    # Acme has 4 members; Starter allows 5 seats, and a pending invitation takes one.
    invite_member(owner, email="fifth@example.com", role=member_role)
    with pytest.raises(LimitReached) as refused:
        invite_member(owner, email="sixth@example.com", role=member_role)
    assert refused.value.message == (
        "Your Starter plan allows 5 members (5 in use). Upgrade to Growth for up to 10 members."
    )
    assert not Invitation.objects.filter(email="sixth@example.com").exists()
    change_plan(cast.tenant, plan=Plan.objects.get(slug="growth"), actor=None)
    invite_member(owner, email="sixth@example.com", role=member_role)


def test_it_shows_the_members_limit_on_the_team_page(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    invite_member(
        _owner(cast), email="fifth@example.com", role=Role.objects.get(tenant=None, slug="member")
    )
    client = client_for(cast.owner, cast.tenant)
    role = Role.objects.get(tenant=None, slug="viewer")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/team/invite/", {"email": "sixth@example.com", "role": role.pk})
    assert response.status_code == 402
    assert "Upgrade to Growth for up to 10 members." in response.content.decode()
    assert not Invitation.objects.filter(email="sixth@example.com").exists()


def test_it_refuses_api_keys_on_a_plan_without_api_access(cast: Cast) -> None:
    kc = key_client(cast.tenant, role="admin")
    assert kc.client.get("/api/v1/me").status_code == 200
    change_plan(cast.tenant, plan=_no_api_plan(), actor=None)
    with pytest.raises(LimitReached, match="Lite plan does not include API access"):
        create_api_key(cast.tenant, name="another")
    error = assert_error(kc.client.get("/api/v1/me"), 402, "limit_reached")
    assert "Upgrade to Starter to get it." in error["message"]


def test_it_keeps_api_access_of_other_tenants(cast: Cast) -> None:
    change_plan(cast.tenant, plan=_no_api_plan(), actor=None)
    other = key_client(cast.other_tenant, role="admin")
    assert other.client.get("/api/v1/me").status_code == 200
