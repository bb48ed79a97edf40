"""Helpers for API tests: clients authenticated by session or by API key on a tenant's host."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey, Role, Tenant, User
from tests.conftest import host_of


@dataclass
class KeyClient:
    client: APIClient
    key: ApiKey
    plaintext: str


def key_client(
    tenant: Tenant, *, role: str = "admin", creator: User | None = None, host: Tenant | None = None
) -> KeyClient:
    """A client on `host` (default: the key's own tenant) sending a new key of `tenant`."""
    from tenants.services.apikeys import create_api_key

    new = create_api_key(
        tenant,
        name=f"test key ({role})",
        role=Role.objects.get(tenant=None, slug=role),
        actor=creator,
    )
    client = APIClient(HTTP_HOST=host_of(host or tenant))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new.plaintext}")
    return KeyClient(client=client, key=new.key, plaintext=new.plaintext)


def assert_error(response: object, status: int, code: str | None = None) -> dict:
    """The response is an error in the API's one format; returns its `error` object."""
    assert response.status_code == status, (response.status_code, response.content)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "fields"}
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(autouse=True)
def _fresh_throttle_budget() -> None:
    """Throttle counters live in Redis and outlive a test's database rollback."""
    from django.core.cache import cache
    from django.db import connection

    connection.set_schema_to_public()
    cache.clear()
