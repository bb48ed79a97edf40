"""Tenant isolation of state that is not a model: sessions, cache keys, uploaded files."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django_tenants.utils import schema_context

from tenants.models import Membership, Role
from tests.conftest import Cast, client_for


def test_it_does_not_honour_a_session_cookie_copied_to_another_tenants_host(cast: Cast) -> None:
    # The owner belongs to both tenants, so only the session store can keep them apart.
    Membership.objects.create(
        tenant=cast.other_tenant, user=cast.owner, role=Role.objects.get(slug="member", tenant=None)
    )
    acme = client_for(cast.owner, cast.tenant)
    assert acme.get("/").status_code == 200
    cookie = acme.cookies["pm_session"].value

    globex = Client(HTTP_HOST="globex.localhost")
    globex.cookies["pm_session"] = cookie
    response = globex.get("/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_it_keeps_cache_keys_apart_between_tenants(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        cache.set("dashboard:summary", "acme's numbers", 60)
        assert cache.get("dashboard:summary") == "acme's numbers"
    with schema_context(cast.other_tenant.schema_name):
        assert cache.get("dashboard:summary") is None
        cache.set("dashboard:summary", "globex's numbers", 60)
    with schema_context(cast.tenant.schema_name):
        assert cache.get("dashboard:summary") == "acme's numbers"
        cache.delete("dashboard:summary")
    with schema_context(cast.other_tenant.schema_name):
        cache.delete("dashboard:summary")


def test_it_stores_uploads_in_a_folder_per_tenant(
    cast: Cast, settings: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)  # type: ignore[attr-defined]
    from django.db import connection

    with schema_context(cast.tenant.schema_name):
        connection.set_tenant(cast.tenant)
        name = default_storage.save("leads.csv", ContentFile(b"email\na@example.com\n"))
        assert default_storage.exists(name)
    assert (tmp_path / cast.tenant.schema_name / name).exists()
    with schema_context(cast.other_tenant.schema_name):
        connection.set_tenant(cast.other_tenant)
        assert not default_storage.exists(name)
    connection.set_schema_to_public()
