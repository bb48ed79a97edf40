from __future__ import annotations

from typing import Any

import pytest

from tenants.models import AuditEvent, Invitation, InvitationStatus, Membership, Role
from tenants.services.access import principal_for_membership
from tenants.services.invitations import invite_member
from tests.conftest import Cast, client_for
from tests.dashboard.helpers import custom_member


def _membership(cast: Cast, user: Any) -> Membership:
    return Membership.objects.get(tenant=cast.tenant, user=user)


def _role(slug: str) -> Role:
    return Role.objects.get(tenant=None, slug=slug)


def _owner_principal(cast: Cast) -> Any:
    return principal_for_membership(_membership(cast, cast.owner))


def test_it_lists_members_with_role_and_status(cast: Cast) -> None:
    response = client_for(cast.member, cast.tenant).get("/team/")
    content = response.content.decode()
    for user in (cast.owner, cast.admin, cast.member, cast.viewer):
        assert user.email in content
    assert cast.outsider.email not in content
    assert "Send invitation" not in content  # member has team: read only


def test_it_invites_by_email_and_lists_the_invitation(
    cast: Cast, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(cast.admin, cast.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/team/invite/", {"email": "New.Person@Example.com", "role": _role("viewer").pk}
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get(tenant=cast.tenant, email="new.person@example.com")
    assert invitation.role.slug == "viewer"
    assert invitation.status == InvitationStatus.PENDING
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.person@example.com"]
    assert "Acme Agency" in mailoutbox[0].subject
    assert "new.person@example.com" in client.get("/team/").content.decode()


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not-an-email", "valid"),
        ("someone@localhost", "valid"),
        ("Joined@Example.com", "already a member"),
    ],
)
def test_it_refuses_bad_invitations_with_a_clear_error(
    cast: Cast, mailoutbox: list[Any], email: str, message: str
) -> None:
    custom_member(cast.tenant, "joined@example.com", campaigns="read")
    response = client_for(cast.owner, cast.tenant).post(
        "/team/invite/", {"email": email, "role": _role("member").pk}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Invitation.objects.filter(tenant=cast.tenant).exists()
    assert mailoutbox == []


def test_it_refuses_a_duplicate_pending_invitation(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    data = {"email": "twice@example.com", "role": _role("member").pk}
    assert client.post("/team/invite/", data).status_code == 302
    response = client.post("/team/invite/", data)
    assert response.status_code == 400
    assert "already has a pending invitation" in response.content.decode()
    assert Invitation.objects.filter(tenant=cast.tenant, email="twice@example.com").count() == 1


def test_it_refuses_another_tenants_role_in_an_invitation(cast: Cast) -> None:
    globex_role = Role.objects.create(tenant=cast.other_tenant, slug="g", name="G", permissions={})
    response = client_for(cast.owner, cast.tenant).post(
        "/team/invite/", {"email": "x@example.com", "role": globex_role.pk}
    )
    assert response.status_code == 400
    assert not Invitation.objects.filter(tenant=cast.tenant).exists()


def test_it_revokes_an_invitation(cast: Cast) -> None:
    invitation = invite_member(_owner_principal(cast), email="r@example.com", role=_role("member"))
    response = client_for(cast.admin, cast.tenant).post(
        f"/team/invitations/{invitation.pk}/revoke/"
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.REVOKED


def test_it_changes_a_members_role(cast: Cast) -> None:
    membership = _membership(cast, cast.member)
    response = client_for(cast.admin, cast.tenant).post(
        f"/team/members/{membership.pk}/role/", {"role": _role("viewer").pk}
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role.slug == "viewer"
    assert AuditEvent.objects.filter(tenant=cast.tenant, action="member.role_changed").exists()


def test_it_changes_a_role_inline_with_htmx(cast: Cast) -> None:
    membership = _membership(cast, cast.viewer)
    response = client_for(cast.owner, cast.tenant).post(
        f"/team/members/{membership.pk}/role/",
        {"role": _role("member").pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith(f'<tr id="member-{membership.pk}">')
    assert "Saved." in content
    membership.refresh_from_db()
    assert membership.role.slug == "member"


def test_it_keeps_owners_for_owners_to_change(cast: Cast) -> None:
    owner = _membership(cast, cast.owner)
    response = client_for(cast.admin, cast.tenant).post(
        f"/team/members/{owner.pk}/role/", {"role": _role("viewer").pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "Only an owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role.slug == "owner"


def test_it_deactivates_and_reactivates_a_member(cast: Cast) -> None:
    membership = _membership(cast, cast.member)
    client = client_for(cast.admin, cast.tenant)
    assert client.post(f"/team/members/{membership.pk}/deactivate/").status_code == 302
    membership.refresh_from_db()
    assert not membership.is_active
    # A deactivated member is logged out of this workspace in effect.
    assert client_for(cast.member, cast.tenant).get("/").status_code == 302
    assert client.post(f"/team/members/{membership.pk}/reactivate/").status_code == 302
    membership.refresh_from_db()
    assert membership.is_active


def test_it_refuses_to_deactivate_yourself(cast: Cast) -> None:
    membership = _membership(cast, cast.admin)
    response = client_for(cast.admin, cast.tenant).post(
        f"/team/members/{membership.pk}/deactivate/", follow=True
    )
    assert "cannot deactivate yourself" in response.content.decode()
    membership.refresh_from_db()
    assert membership.is_active


def test_it_creates_edits_and_deletes_a_custom_role(cast: Cast) -> None:
    client = client_for(cast.admin, cast.tenant)
    perms = {"perm_campaigns": "write", "perm_billing": "none", "perm_leads": "read"}
    response = client.post("/team/roles/new/", {"name": "Copywriter", **perms})
    assert response.status_code == 302
    role = Role.objects.get(tenant=cast.tenant, slug="copywriter")
    assert role.permissions["campaigns"] == "write"
    assert role.permissions["leads"] == "read"
    assert role.permissions["billing"] == "none"
    assert "Copywriter" in client.get("/team/roles/").content.decode()

    response = client.post(
        f"/team/roles/{role.pk}/edit/", {"name": "Senior copywriter", "perm_billing": "read"}
    )
    assert response.status_code == 302
    role.refresh_from_db()
    assert role.name == "Senior copywriter"
    assert role.permissions["billing"] == "read"
    assert role.permissions["campaigns"] == "none"

    assert client.post(f"/team/roles/{role.pk}/delete/").status_code == 302
    assert not Role.objects.filter(pk=role.pk).exists()


def test_it_refuses_to_delete_a_role_still_in_use(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    client.post("/team/roles/new/", {"name": "Busy", "perm_campaigns": "read"})
    role = Role.objects.get(tenant=cast.tenant, slug="busy")
    Membership.objects.filter(tenant=cast.tenant, user=cast.member).update(role=role)
    response = client.post(f"/team/roles/{role.pk}/delete/", follow=True)
    assert "Members still have this role" in response.content.decode()
    assert Role.objects.filter(pk=role.pk).exists()


def test_it_refuses_to_edit_a_builtin_role(cast: Cast) -> None:
    viewer = _role("viewer")
    response = client_for(cast.owner, cast.tenant).post(
        f"/team/roles/{viewer.pk}/edit/", {"name": "Hacked", "perm_billing": "write"}
    )
    assert response.status_code == 403
    viewer.refresh_from_db()
    assert viewer.name == "Viewer"


def test_it_refuses_a_role_name_clash_with_a_clear_error(cast: Cast) -> None:
    response = client_for(cast.owner, cast.tenant).post("/team/roles/new/", {"name": "Admin"})
    assert response.status_code == 400
    assert "exists" in response.content.decode()
    assert not Role.objects.filter(tenant=cast.tenant).exists()
