"""Regressions found in review: role deletion with keys or invitations, key role escalation,
role references that are not plain numbers."""

from __future__ import annotations

from tenants.models import ApiKey, Invitation, Membership, Role
from tenants.services import team
from tenants.services.access import principal_for_membership
from tests.api.conftest import assert_error
from tests.conftest import Cast, client_for


def _owner(cast: Cast):  # type: ignore[no-untyped-def]
    return principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))


def test_it_refuses_to_delete_a_role_an_api_key_or_invitation_has(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    keyed = client.post("/api/v1/roles", {"name": "Keyed", "permissions": {}}).json()["id"]
    assert client.post("/api/v1/api-keys", {"name": "k", "role": keyed}).status_code == 201
    assert_error(client.delete(f"/api/v1/roles/{keyed}"), 409, "conflict")
    invited = team.create_role(_owner(cast), name="Invited", permissions={})
    dashboard = client_for(cast.owner, cast.tenant)
    response = dashboard.post("/team/invite/", {"email": "new@example.com", "role": invited.pk})
    assert response.status_code == 302, response.content
    assert Invitation.objects.filter(tenant=cast.tenant, role=invited).exists()
    response = dashboard.post(f"/team/roles/{invited.pk}/delete/")
    assert response.status_code == 302
    assert set(Role.objects.filter(tenant=cast.tenant).values_list("name", flat=True)) == {
        "Keyed",
        "Invited",
    }


def test_a_key_minter_cannot_give_a_key_more_access_than_it_has(cast: Cast) -> None:
    minter = team.create_role(_owner(cast), name="Key minter", permissions={"api_keys": "write"})
    member = Membership.objects.get(tenant=cast.tenant, user=cast.member)
    team.change_member_role(_owner(cast), member, role=minter)
    client = client_for(cast.member, cast.tenant, api=True)
    error = assert_error(client.post("/api/v1/api-keys", {"name": "k", "role": "admin"}), 403)
    assert "Billing" in error["message"]
    dashboard = client_for(cast.member, cast.tenant)
    admin = Role.objects.get(tenant=None, slug="admin")
    response = dashboard.post("/settings/api-keys/new/", {"name": "k", "role": admin.pk})
    assert response.status_code == 403
    assert not ApiKey.objects.filter(tenant=cast.tenant).exists()
    # A key with no more than the minter's own access is fine.
    response = client.post("/api/v1/api-keys", {"name": "k", "role": minter.pk})
    assert response.status_code == 201, response.content


def test_it_answers_400_for_a_role_reference_that_is_no_number(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    member = Membership.objects.get(tenant=cast.tenant, user=cast.member)
    for ref in ("²", "١", "99999999999999999999999"):
        error = assert_error(client.patch(f"/api/v1/members/{member.pk}", {"role": ref}), 400)
        assert "role" in error["fields"]
