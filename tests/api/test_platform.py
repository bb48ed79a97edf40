"""What every endpoint shares: throttling, suspension, the scoped base, errors, schema and docs."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.db.models import QuerySet
from rest_framework.test import APIClient

from tenants.models import ApiKey, Membership, Role
from tenants.rest.viewsets import TenantScopedViewSet
from tenants.services.tenancy import reactivate_tenant, suspend_tenant
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for, host_of


def test_it_throttles_past_the_configured_rate(cast: Cast, settings: pytest.FixtureRequest) -> None:
    settings.REST_FRAMEWORK = {  # type: ignore[attr-defined]
        **settings.REST_FRAMEWORK,  # type: ignore[attr-defined]
        "DEFAULT_THROTTLE_RATES": {"tenant": "3/min"},
    }
    kc = key_client(cast.tenant)
    for _ in range(3):
        assert kc.client.get("/api/v1/me").status_code == 200
    response = kc.client.get("/api/v1/me")
    error = assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert "throttled" in error["message"].lower()
    # Budgets are per caller: another key of the same tenant is still served.
    assert key_client(cast.tenant).client.get("/api/v1/me").status_code == 200
    # Session callers have their own budget too.
    session = client_for(cast.viewer, cast.tenant, api=True)
    for _ in range(3):
        assert session.get("/api/v1/members").status_code == 200
    assert_error(session.get("/api/v1/members"), 429)


def test_it_refuses_writes_in_a_suspended_tenant(cast: Cast) -> None:
    suspend_tenant(cast.tenant, reason="unpaid")
    member = Membership.objects.get(tenant=cast.tenant, user=cast.member)
    kc = key_client(cast.tenant, role="admin")
    for client in (client_for(cast.owner, cast.tenant, api=True), kc.client):
        # Reads still work: the data stays visible.
        me = client.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["tenant"]["status"] == "suspended"
        assert client.get("/api/v1/members").status_code == 200
        error = assert_error(
            client.patch(f"/api/v1/members/{member.pk}", {"role": "viewer"}),
            423,
            "tenant_suspended",
        )
        assert "suspended" in error["message"]
        assert_error(client.post("/api/v1/api-keys", {"name": "during"}), 423)
        assert_error(client.post("/api/v1/roles", {"name": "During", "permissions": {}}), 423)
        assert_error(client.delete(f"/api/v1/api-keys/{kc.key.pk}"), 423)
    member.refresh_from_db()
    assert member.role.slug == "member"
    assert not ApiKey.objects.filter(name="during").exists()
    assert not Role.objects.filter(tenant=cast.tenant).exists()
    assert ApiKey.objects.get(pk=kc.key.pk).revoked_at is None
    # A permission refusal still reads as one, before the suspension.
    viewer = client_for(cast.viewer, cast.tenant, api=True)
    assert_error(viewer.post("/api/v1/roles", {"name": "V", "permissions": {}}), 403)

    reactivate_tenant(cast.tenant)
    assert kc.client.post("/api/v1/api-keys", {"name": "after"}).status_code == 201


def test_it_answers_unknown_api_paths_and_methods_in_the_error_format(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.get("/api/v1/members/999999999"), 404, "not_found")
    response = client.put("/api/v1/me", {})
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]
    assert_error(client.get("/api/v1/members/not-a-number"), 404)


def test_it_refuses_a_viewset_that_overrides_get_queryset() -> None:
    with pytest.raises(TypeError, match="get_queryset"):

        class Leaky(TenantScopedViewSet):
            permission_area = None

            def get_queryset(self) -> QuerySet[Role]:
                return Role.objects.all()


def test_it_publishes_an_openapi_schema_with_every_endpoint(cast: Cast) -> None:
    response = APIClient(HTTP_HOST=host_of(cast.tenant)).get(
        "/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    expected = {
        "/api/v1/me/": {"get"},
        "/api/v1/members/": {"get"},
        "/api/v1/members/{id}/": {"get", "patch"},
        "/api/v1/members/{id}/deactivate/": {"post"},
        "/api/v1/members/{id}/reactivate/": {"post"},
        "/api/v1/roles/": {"get", "post"},
        "/api/v1/roles/{id}/": {"get", "patch", "delete"},
        "/api/v1/api-keys/": {"get", "post"},
        "/api/v1/api-keys/{id}/": {"get", "delete"},
        "/api/v1/api-keys/{id}/revoke/": {"post"},
    }
    paths = schema["paths"]
    for path, methods in expected.items():
        assert path in paths, sorted(paths)
        assert methods <= set(paths[path]), (path, set(paths[path]))
    bearer = schema["components"]["securitySchemes"]["ApiKeyAuth"]
    assert bearer["type"] == "http" and bearer["scheme"] == "bearer"
    assert {"ApiKeyAuth": []} in paths["/api/v1/members/"]["get"]["security"]
    created = paths["/api/v1/api-keys/"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "key" in schema["components"]["schemas"][ref]["properties"]


def test_it_serves_the_docs_page_from_local_static_files_only(cast: Cast) -> None:
    response = APIClient(HTTP_HOST=host_of(cast.tenant)).get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assets = re.findall(r'(?:src|href)\s*=\s*"([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")) is not None, asset
    assert not re.search(r"https?://", html.replace("http://www.w3.org", "")), html
    assert "/api/v1/schema/" in html
