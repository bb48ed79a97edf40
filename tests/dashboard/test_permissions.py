"""Writes refused to roles without team/settings/API key write access, to outsiders, and in a
suspended workspace: 403, login redirect, 404 or 423, and nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Role, Tenant
from tenants.services.access import principal_for_membership
from tenants.services.apikeys import create_api_key
from tenants.services.invitations import invite_member
from tenants.services.tenancy import suspend_tenant
from tests.conftest import Cast, client_for

Write = Callable[[Client, Cast], Any]


def _snapshot(cast: Cast) -> tuple[Any, ...]:
    """Everything a dashboard write could change in acme."""
    tenant = Tenant.objects.get(pk=cast.tenant.pk)
    return (
        tenant.name,
        sorted(
            Membership.objects.filter(tenant=cast.tenant).values_list(
                "user_id", "role_id", "is_active"
            )
        ),
        sorted(Invitation.objects.filter(tenant=cast.tenant).values_list("pk", "status")),
        sorted(Role.objects.filter(tenant=cast.tenant).values_list("pk", "name", "permissions")),
        sorted(ApiKey.objects.filter(tenant=cast.tenant).values_list("pk", "revoked_at")),
        AuditEvent.objects.filter(tenant=cast.tenant).count(),
    )


def _prepare(cast: Cast) -> dict[str, int]:
    owner = principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))
    invitation = invite_member(
        owner, email="pending@example.com", role=Role.objects.get(tenant=None, slug="member")
    )
    role = Role.objects.create(
        tenant=cast.tenant, slug="custom", name="Custom", permissions={"campaigns": "read"}
    )
    key = create_api_key(cast.tenant, name="ci").key
    return {
        "member": Membership.objects.get(tenant=cast.tenant, user=cast.member).pk,
        "invitation": invitation.pk,
        "role": role.pk,
        "key": key.pk,
        "viewer_role": Role.objects.get(tenant=None, slug="viewer").pk,
    }


WRITES: dict[str, Callable[[dict[str, int]], tuple[str, dict[str, Any]]]] = {
    "invite": lambda ids: ("/team/invite/", {"email": "x@example.com", "role": ids["viewer_role"]}),
    "revoke invitation": lambda ids: (f"/team/invitations/{ids['invitation']}/revoke/", {}),
    "change role": lambda ids: (
        f"/team/members/{ids['member']}/role/", {"role": ids["viewer_role"]}
    ),
    "deactivate": lambda ids: (f"/team/members/{ids['member']}/deactivate/", {}),
    "create role": lambda ids: ("/team/roles/new/", {"name": "Sneaky", "perm_billing": "write"}),
    "edit role": lambda ids: (f"/team/roles/{ids['role']}/edit/", {"name": "Renamed"}),
    "delete role": lambda ids: (f"/team/roles/{ids['role']}/delete/", {}),
    "rename workspace": lambda ids: ("/settings/rename/", {"name": "Pwned"}),
    "create API key": lambda ids: (
        "/settings/api-keys/new/", {"name": "stolen", "role": ids["viewer_role"]}
    ),
    "revoke API key": lambda ids: (f"/settings/api-keys/{ids['key']}/revoke/", {}),
}  # fmt: skip


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_it_refuses_every_write_to_a_viewer(cast: Cast, write: str) -> None:
    ids = _prepare(cast)
    before = _snapshot(cast)
    path, data = WRITES[write](ids)
    response = client_for(cast.viewer, cast.tenant).post(path, data)
    assert response.status_code == 403
    assert _snapshot(cast) == before


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_it_redirects_an_outsider_to_login_for_every_write(cast: Cast, write: str) -> None:
    ids = _prepare(cast)
    before = _snapshot(cast)
    path, data = WRITES[write](ids)
    response = client_for(cast.outsider, cast.tenant).post(path, data)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert _snapshot(cast) == before


WRITES_ON_IDS = [
    "revoke invitation",
    "change role",
    "deactivate",
    "edit role",
    "delete role",
    "revoke API key",
]


@pytest.mark.parametrize("write", WRITES_ON_IDS)
def test_it_answers_404_for_acme_ids_on_the_outsiders_own_host(cast: Cast, write: str) -> None:
    ids = _prepare(cast)
    before = _snapshot(cast)
    path, data = WRITES[write](ids)
    response = client_for(cast.outsider, cast.other_tenant).post(path, data)
    assert response.status_code == 404
    assert _snapshot(cast) == before


def test_it_keeps_acmes_api_key_active_when_revoked_from_globex(cast: Cast) -> None:
    key = create_api_key(cast.tenant, name="acme key").key
    response = client_for(cast.outsider, cast.other_tenant).post(
        f"/settings/api-keys/{key.pk}/revoke/"
    )
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.is_active


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_it_refuses_every_write_in_a_suspended_workspace(cast: Cast, write: str) -> None:
    ids = _prepare(cast)
    suspend_tenant(cast.tenant, reason="unpaid")
    before = _snapshot(cast)
    path, data = WRITES[write](ids)
    response = client_for(cast.owner, cast.tenant).post(path, data)
    assert response.status_code == 423
    assert "suspended" in response.content.decode()
    assert _snapshot(cast) == before


def test_it_refuses_writes_to_a_member_without_team_write(cast: Cast) -> None:
    ids = _prepare(cast)
    before = _snapshot(cast)
    path, data = WRITES["invite"](ids)
    assert client_for(cast.member, cast.tenant).post(path, data).status_code == 403
    assert _snapshot(cast) == before
