"""/api/v1/members: list, filter, retrieve, change role, deactivate, reactivate."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import AuditEvent, Membership, Role, User
from tenants.services import team
from tenants.services.access import principal_for_membership
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for


def _membership(cast: Cast, user: object) -> Membership:
    return Membership.objects.select_related("role").get(tenant=cast.tenant, user=user)


def test_it_lists_members_in_pages(cast: Cast) -> None:
    client = client_for(cast.viewer, cast.tenant, api=True)
    response = client.get("/api/v1/members")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    emails = {row["user"]["email"] for row in body["results"]}
    assert emails == {"owner@acme.test", "admin@acme.test", "member@acme.test", "viewer@acme.test"}
    assert "outsider@globex.test" not in response.content.decode()

    first = client.get("/api/v1/members?page_size=3").json()
    assert len(first["results"]) == 3 and first["previous"] is None
    assert first["next"].endswith("page=2&page_size=3")
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert second["previous"] is not None
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in second["results"]})


def test_it_filters_members_by_role_and_activity(cast: Cast) -> None:
    client = client_for(cast.admin, cast.tenant, api=True)
    viewers = client.get("/api/v1/members?role=viewer").json()
    assert [r["user"]["email"] for r in viewers["results"]] == ["viewer@acme.test"]
    Membership.objects.filter(tenant=cast.tenant, user=cast.member).update(is_active=False)
    inactive = client.get("/api/v1/members?is_active=false").json()
    assert [r["user"]["email"] for r in inactive["results"]] == ["member@acme.test"]
    assert client.get("/api/v1/members?is_active=true").json()["count"] == 3


def test_it_retrieves_a_member(cast: Cast) -> None:
    member = _membership(cast, cast.member)
    response = client_for(cast.viewer, cast.tenant, api=True).get(f"/api/v1/members/{member.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "member@acme.test"
    assert body["role"]["slug"] == "member"
    assert body["is_active"] is True and body["is_owner"] is False


def test_it_changes_a_members_role_by_slug_or_id(cast: Cast) -> None:
    member = _membership(cast, cast.member)
    client = client_for(cast.admin, cast.tenant, api=True)
    response = client.patch(f"/api/v1/members/{member.pk}", {"role": "viewer"})
    assert response.status_code == 200, response.content
    assert response.json()["role"]["slug"] == "viewer"
    member.refresh_from_db()
    assert member.role.slug == "viewer"
    admin_role = Role.objects.get(tenant=None, slug="admin")
    response = client.patch(f"/api/v1/members/{member.pk}", {"role": admin_role.pk})
    assert response.json()["role"]["slug"] == "admin"
    assert AuditEvent.objects.filter(
        tenant=cast.tenant, action="member.role_changed", actor=cast.admin
    ).exists()


def test_it_explains_bad_role_input_field_by_field(cast: Cast) -> None:
    member = _membership(cast, cast.member)
    client = client_for(cast.admin, cast.tenant, api=True)
    error = assert_error(
        client.patch(f"/api/v1/members/{member.pk}", {"role": "emperor"}), 400, "validation_error"
    )
    assert error["fields"] == {"role": ["No such role in this workspace."]}
    error = assert_error(client.patch(f"/api/v1/members/{member.pk}", {}), 400)
    assert "role" in error["fields"]
    # A custom role of another tenant is as unknown as a made-up one.
    globex_owner = Membership.objects.get(tenant=cast.other_tenant, user=cast.outsider)
    foreign = team.create_role(
        principal_for_membership(globex_owner), name="Globex Closer", permissions={}
    )
    error = assert_error(client.patch(f"/api/v1/members/{member.pk}", {"role": foreign.pk}), 400)
    assert "role" in error["fields"]
    assert _membership(cast, cast.member).role.slug == "member"


def test_it_deactivates_and_reactivates_a_member(cast: Cast) -> None:
    member = _membership(cast, cast.member)
    client = client_for(cast.owner, cast.tenant, api=True)
    response = client.post(f"/api/v1/members/{member.pk}/deactivate")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert not _membership(cast, cast.member).is_active
    # The deactivated member's session no longer works.
    assert_error(client_for(cast.member, cast.tenant, api=True).get("/api/v1/me"), 401)
    assert_error(client.post(f"/api/v1/members/{member.pk}/deactivate"), 409, "conflict")
    response = client.post(f"/api/v1/members/{member.pk}/reactivate")
    assert response.status_code == 200 and response.json()["is_active"] is True
    assert _membership(cast, cast.member).is_active


def test_it_keeps_the_last_owner(cast: Cast) -> None:
    owner = _membership(cast, cast.owner)
    client = client_for(cast.owner, cast.tenant, api=True)
    error = assert_error(client.patch(f"/api/v1/members/{owner.pk}", {"role": "admin"}), 409)
    assert "owner" in error["message"]
    assert _membership(cast, cast.owner).role.slug == "owner"
    # With a second owner, the first may step down.
    admin = _membership(cast, cast.admin)
    assert client.patch(f"/api/v1/members/{admin.pk}", {"role": "owner"}).status_code == 200
    assert client.patch(f"/api/v1/members/{owner.pk}", {"role": "admin"}).status_code == 200
    assert _membership(cast, cast.owner).role.slug == "admin"


def test_it_lets_only_owners_touch_owners(cast: Cast) -> None:
    owner = _membership(cast, cast.owner)
    member = _membership(cast, cast.member)
    client = client_for(cast.admin, cast.tenant, api=True)
    assert_error(client.patch(f"/api/v1/members/{owner.pk}", {"role": "viewer"}), 403)
    assert_error(client.patch(f"/api/v1/members/{member.pk}", {"role": "owner"}), 403)
    assert_error(client.post(f"/api/v1/members/{owner.pk}/deactivate"), 403)
    assert _membership(cast, cast.owner).role.slug == "owner"
    assert _membership(cast, cast.owner).is_active
    assert _membership(cast, cast.member).role.slug == "member"


def test_it_lets_a_viewer_read_but_not_write(cast: Cast) -> None:
    member = _membership(cast, cast.member)
    client = client_for(cast.viewer, cast.tenant, api=True)
    assert client.get("/api/v1/members").status_code == 200
    error = assert_error(
        client.patch(f"/api/v1/members/{member.pk}", {"role": "admin"}), 403, "permission_denied"
    )
    assert "Viewer" in error["message"]
    assert_error(client.post(f"/api/v1/members/{member.pk}/deactivate"), 403)
    member.refresh_from_db()
    assert member.role.slug == "member" and member.is_active


def test_it_refuses_members_to_a_role_without_team_access(cast: Cast) -> None:
    owner = principal_for_membership(_membership(cast, cast.owner))
    closer = team.create_role(
        owner, name="Closer", permissions={"campaigns": "write", "team": "none"}
    )
    member = _membership(cast, cast.member)
    team.change_member_role(owner, member, role=closer)
    client = client_for(cast.member, cast.tenant, api=True)
    assert client.get("/api/v1/me").json()["role"]["slug"] == "closer"
    assert_error(client.get("/api/v1/members"), 403, "permission_denied")
    assert_error(client.get(f"/api/v1/members/{member.pk}"), 403)
    assert_error(client.get("/api/v1/roles"), 403)


def test_it_hides_another_tenants_members(cast: Cast) -> None:
    """Globex's owner, on globex's host with globex credentials, asks for acme's member ids."""
    member = _membership(cast, cast.member)
    for client in (
        client_for(cast.outsider, cast.other_tenant, api=True),
        key_client(cast.other_tenant, role="admin").client,
    ):
        assert_error(client.get(f"/api/v1/members/{member.pk}"), 404, "not_found")
        assert_error(client.patch(f"/api/v1/members/{member.pk}", {"role": "viewer"}), 404)
        assert_error(client.post(f"/api/v1/members/{member.pk}/deactivate"), 404)
        listed = client.get("/api/v1/members").json()
        assert [r["user"]["email"] for r in listed["results"]] == ["outsider@globex.test"]
    member.refresh_from_db()
    assert member.role.slug == "member" and member.is_active


def test_it_lets_an_admin_key_manage_members(cast: Cast) -> None:
    member = _membership(cast, cast.member)
    kc = key_client(cast.tenant, role="admin", creator=cast.admin)
    response = kc.client.patch(f"/api/v1/members/{member.pk}", {"role": "viewer"})
    assert response.status_code == 200
    assert _membership(cast, cast.member).role.slug == "viewer"
    # A key has no membership, so it is never an owner: owners are out of its reach.
    owner = _membership(cast, cast.owner)
    assert_error(kc.client.post(f"/api/v1/members/{owner.pk}/deactivate"), 403)


def test_it_lists_members_in_a_fixed_number_of_queries(cast: Cast) -> None:
    kc = key_client(cast.tenant, role="viewer")
    kc.client.get("/api/v1/members")  # stamps last_used_at, so later calls do not write

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert kc.client.get("/api/v1/members").status_code == 200
        return len(captured.captured_queries)

    before = count_queries()
    viewer = Role.objects.get(tenant=None, slug="viewer")
    for n in range(5):
        user = User.objects.create_user(f"extra{n}@acme.test", "x-long-password-1")
        Membership.objects.create(tenant=cast.tenant, user=user, role=viewer)
    assert count_queries() == before <= 8  # 4 statements plus django-tenants' SET search_path
