"""Who may call the API: member sessions (with CSRF) and this tenant's API keys, nobody else."""

from __future__ import annotations

from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from tenants.models import ApiKey, Membership
from tenants.services.apikeys import revoke_api_key
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for, host_of


def test_it_describes_a_session_caller(cast: Cast) -> None:
    response = client_for(cast.viewer, cast.tenant, api=True).get("/api/v1/me")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "viewer@acme.test"
    assert body["tenant"] == {"name": "Acme Agency", "slug": "acme", "status": "active"}
    assert body["role"]["slug"] == "viewer"
    assert body["role"]["permissions"]["campaigns"] == "read"
    assert body["role"]["permissions"]["api_keys"] == "none"
    assert body["api_key"] is None


def test_it_describes_an_api_key_caller(cast: Cast) -> None:
    kc = key_client(cast.tenant, role="member", creator=cast.admin)
    response = kc.client.get("/api/v1/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["api_key"] == {"name": kc.key.name, "prefix": kc.key.prefix}
    assert body["role"]["slug"] == "member"  # the key's role, not its creator's
    assert body["user"]["email"] == "admin@acme.test"
    assert body["tenant"]["slug"] == "acme"


def test_it_asks_anonymous_callers_to_authenticate(cast: Cast) -> None:
    response = APIClient(HTTP_HOST=host_of(cast.tenant)).get("/api/v1/members")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_a_key_on_another_tenants_host(cast: Cast) -> None:
    kc = key_client(cast.tenant, host=cast.other_tenant)
    for path in ("/api/v1/me", "/api/v1/members", "/api/v1/api-keys"):
        assert_error(kc.client.get(path), 401, "authentication_failed")
    # The same key is fine at home, so the refusal is about the host.
    home = APIClient(HTTP_HOST=host_of(cast.tenant), HTTP_AUTHORIZATION=f"Bearer {kc.plaintext}")
    assert home.get("/api/v1/me").status_code == 200


def test_it_refuses_revoked_unknown_and_malformed_keys(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    assert kc.client.get("/api/v1/me").status_code == 200
    revoke_api_key(kc.key)
    assert_error(kc.client.get("/api/v1/me"), 401, "authentication_failed")
    client = APIClient(HTTP_HOST=host_of(cast.tenant))
    for header in (
        f"Bearer {kc.plaintext[:-2]}xx",
        "Bearer pm_nothere_secret",
        "Bearer",
        "Bearer a b",
    ):
        client.credentials(HTTP_AUTHORIZATION=header)
        assert_error(client.get("/api/v1/me"), 401)


def test_it_treats_an_outsiders_session_as_anonymous(cast: Cast) -> None:
    outsider = client_for(cast.outsider, cast.tenant, api=True)
    member = Membership.objects.get(tenant=cast.tenant, user=cast.member)
    assert_error(outsider.get("/api/v1/me"), 401)
    assert_error(outsider.get("/api/v1/members"), 401)
    assert_error(outsider.get(f"/api/v1/members/{member.pk}"), 401)
    assert_error(outsider.patch(f"/api/v1/members/{member.pk}", {"role": "admin"}), 401)
    assert_error(outsider.post("/api/v1/api-keys", {"name": "sneaky"}), 401)
    assert_error(outsider.post("/api/v1/roles", {"name": "Sneaky", "permissions": {}}), 401)
    member.refresh_from_db()
    assert member.role.slug == "member"
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_it_refuses_a_deactivated_members_session(cast: Cast) -> None:
    client = client_for(cast.member, cast.tenant, api=True)
    Membership.objects.filter(tenant=cast.tenant, user=cast.member).update(is_active=False)
    assert_error(client.get("/api/v1/me"), 401)


def test_it_refuses_session_writes_without_a_csrf_token(cast: Cast) -> None:
    client = APIClient(HTTP_HOST=host_of(cast.tenant), enforce_csrf_checks=True)
    with schema_context(cast.tenant.schema_name):
        client.force_login(cast.owner)
    assert client.get("/api/v1/api-keys").status_code == 200  # reads need no token
    error = assert_error(client.post("/api/v1/api-keys", {"name": "no csrf"}), 403)
    assert "CSRF" in error["message"]
    assert not ApiKey.objects.filter(name="no csrf").exists()

    # With the dashboard's token (cookie + header) the same write goes through.
    client.get("/")  # the dashboard page sets the CSRF cookie
    token = client.cookies["pm_csrftoken"].value
    response = client.post("/api/v1/api-keys", {"name": "with csrf"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    assert ApiKey.objects.filter(tenant=cast.tenant, name="with csrf").exists()


def test_it_needs_no_csrf_token_with_an_api_key(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    client = APIClient(HTTP_HOST=host_of(cast.tenant), enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {kc.plaintext}")
    assert client.post("/api/v1/api-keys", {"name": "by key"}).status_code == 201
