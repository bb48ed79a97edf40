"""/api/v1/roles: built-in roles (read-only) and this tenant's custom roles."""

from __future__ import annotations

from tenants.models import Membership, Role
from tenants.services import team
from tenants.services.access import principal_for_membership
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for


def _globex_role(cast: Cast) -> Role:
    owner = Membership.objects.get(tenant=cast.other_tenant, user=cast.outsider)
    return team.create_role(
        principal_for_membership(owner), name="Globex Closer", permissions={"campaigns": "write"}
    )


def test_it_lists_builtin_and_own_custom_roles_only(cast: Cast) -> None:
    foreign = _globex_role(cast)
    client = client_for(cast.admin, cast.tenant, api=True)
    created = client.post("/api/v1/roles", {"name": "Closer", "permissions": {"leads": "write"}})
    assert created.status_code == 201, created.content
    body = client.get("/api/v1/roles").json()
    slugs = [r["slug"] for r in body["results"]]
    assert set(slugs) == {"owner", "admin", "member", "viewer", "closer"}
    assert foreign.slug not in slugs
    custom = client.get("/api/v1/roles?is_builtin=false").json()["results"]
    assert [r["slug"] for r in custom] == ["closer"]


def test_it_creates_a_custom_role(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    response = client.post(
        "/api/v1/roles",
        {"name": "Biller", "description": "Money only", "permissions": {"billing": "write"}},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "biller" and body["is_builtin"] is False
    assert body["permissions"]["billing"] == "write"
    assert body["permissions"]["campaigns"] == "none"  # areas left out get none
    role = Role.objects.get(pk=body["id"])
    assert role.tenant_id == cast.tenant.pk and role.description == "Money only"


def test_it_explains_invalid_roles_field_by_field(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    error = assert_error(client.post("/api/v1/roles", {"permissions": {}}), 400, "validation_error")
    assert "name" in error["fields"]
    error = assert_error(
        client.post("/api/v1/roles", {"name": "X", "permissions": {"moon": "write"}}), 400
    )
    assert "moon" in error["fields"]["permissions"][0]
    error = assert_error(
        client.post("/api/v1/roles", {"name": "X", "permissions": {"leads": "godmode"}}), 400
    )
    assert "permissions" in error["fields"]
    error = assert_error(client.post("/api/v1/roles", {"name": "Admin", "permissions": {}}), 400)
    assert "name" in error["fields"]
    assert not Role.objects.filter(tenant=cast.tenant).exists()


def test_it_updates_and_deletes_a_custom_role(cast: Cast) -> None:
    client = client_for(cast.admin, cast.tenant, api=True)
    role_id = client.post("/api/v1/roles", {"name": "Closer", "permissions": {}}).json()["id"]
    response = client.patch(f"/api/v1/roles/{role_id}", {"permissions": {"campaigns": "read"}})
    assert response.status_code == 200
    assert Role.objects.get(pk=role_id).permissions["campaigns"] == "read"
    assert Role.objects.get(pk=role_id).name == "Closer"
    assert client.delete(f"/api/v1/roles/{role_id}").status_code == 204
    assert not Role.objects.filter(pk=role_id).exists()


def test_it_refuses_to_delete_a_role_in_use(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    role_id = client.post("/api/v1/roles", {"name": "Closer", "permissions": {}}).json()["id"]
    member = Membership.objects.get(tenant=cast.tenant, user=cast.member)
    assert client.patch(f"/api/v1/members/{member.pk}", {"role": role_id}).status_code == 200
    assert_error(client.delete(f"/api/v1/roles/{role_id}"), 409, "conflict")
    assert Role.objects.filter(pk=role_id).exists()


def test_it_refuses_changes_to_builtin_roles(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    viewer = Role.objects.get(tenant=None, slug="viewer")
    before = dict(viewer.permissions)
    assert client.get(f"/api/v1/roles/{viewer.pk}").json()["is_builtin"] is True
    error = assert_error(
        client.patch(f"/api/v1/roles/{viewer.pk}", {"permissions": {"billing": "write"}}), 403
    )
    assert "Built-in" in error["message"]
    assert_error(client.delete(f"/api/v1/roles/{viewer.pk}"), 403)
    viewer.refresh_from_db()
    assert viewer.permissions == before


def test_it_lets_a_viewer_read_roles_but_not_write(cast: Cast) -> None:
    owner = principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))
    role = team.create_role(owner, name="Closer", permissions={})
    client = client_for(cast.viewer, cast.tenant, api=True)
    assert client.get("/api/v1/roles").status_code == 200
    assert_error(client.post("/api/v1/roles", {"name": "Mine", "permissions": {}}), 403)
    assert_error(client.patch(f"/api/v1/roles/{role.pk}", {"name": "Renamed"}), 403)
    assert_error(client.delete(f"/api/v1/roles/{role.pk}"), 403)
    assert list(Role.objects.filter(tenant=cast.tenant).values_list("name", flat=True)) == [
        "Closer"
    ]


def test_it_hides_another_tenants_roles(cast: Cast) -> None:
    owner = principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))
    acme_role = team.create_role(owner, name="Closer", permissions={})
    for client in (
        client_for(cast.outsider, cast.other_tenant, api=True),
        key_client(cast.other_tenant, role="admin").client,
    ):
        assert_error(client.get(f"/api/v1/roles/{acme_role.pk}"), 404)
        assert_error(client.patch(f"/api/v1/roles/{acme_role.pk}", {"name": "Mine"}), 404)
        assert_error(client.delete(f"/api/v1/roles/{acme_role.pk}"), 404)
    acme_role.refresh_from_db()
    assert acme_role.name == "Closer"
