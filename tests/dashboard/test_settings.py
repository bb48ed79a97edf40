from __future__ import annotations

import hashlib
import re

from django.db import connection

from tenants.models import ApiKey, Role, Tenant
from tenants.services.apikeys import authenticate_api_key
from tests.conftest import Cast, client_for


def _create_key(cast: Cast, name: str = "CI key") -> tuple[str, ApiKey]:
    role = Role.objects.get(tenant=None, slug="member")
    response = client_for(cast.admin, cast.tenant).post(
        "/settings/api-keys/new/", {"name": name, "role": role.pk}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    match = re.search(r'id="new-api-key">(pm_[A-Za-z0-9_-]+)<', response.content.decode())
    assert match, "plaintext key not shown"
    return match.group(1), ApiKey.objects.get(tenant=cast.tenant, name=name)


def test_it_renames_the_workspace(cast: Cast) -> None:
    response = client_for(cast.admin, cast.tenant).post("/settings/rename/", {"name": "Acme Ltd"})
    assert response.status_code == 302
    assert Tenant.objects.get(pk=cast.tenant.pk).name == "Acme Ltd"


def test_it_refuses_an_empty_workspace_name(cast: Cast) -> None:
    response = client_for(cast.admin, cast.tenant).post("/settings/rename/", {"name": "  "})
    assert response.status_code == 400
    assert Tenant.objects.get(pk=cast.tenant.pk).name == "Acme Agency"


def test_it_shows_a_new_api_key_once_and_stores_only_its_hash(cast: Cast) -> None:
    plaintext, key = _create_key(cast)
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert key.role.slug == "member"
    # The plaintext is nowhere in the key's row.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM public.tenants_apikey WHERE id = %s", [key.pk])
        row = cursor.fetchone()
    assert row is not None
    assert not any(plaintext in str(value) for value in row)
    assert plaintext.split("_", 2)[2] not in " ".join(str(value) for value in row)
    # The settings page lists the key by prefix, never the secret.
    page = client_for(cast.admin, cast.tenant).get("/settings/").content.decode()
    assert f"pm_{key.prefix}_" in page
    assert plaintext not in page
    assert authenticate_api_key(plaintext) == key


def test_it_revokes_an_api_key(cast: Cast) -> None:
    plaintext, key = _create_key(cast)
    response = client_for(cast.admin, cast.tenant).post(f"/settings/api-keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert not key.is_active
    assert authenticate_api_key(plaintext) is None


def test_it_refuses_an_owner_role_for_api_keys(cast: Cast) -> None:
    owner_role = Role.objects.get(tenant=None, slug="owner")
    response = client_for(cast.owner, cast.tenant).post(
        "/settings/api-keys/new/", {"name": "root", "role": owner_role.pk}
    )
    assert response.status_code == 400
    assert not ApiKey.objects.filter(tenant=cast.tenant).exists()


def test_it_hides_api_keys_from_a_member(cast: Cast) -> None:
    _create_key(cast, "secret integration")
    response = client_for(cast.member, cast.tenant).get("/settings/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "secret integration" not in content
    assert "Rename workspace" not in content


def test_it_does_not_list_another_tenants_keys(cast: Cast) -> None:
    _create_key(cast, "acme only")
    content = client_for(cast.outsider, cast.other_tenant).get("/settings/").content.decode()
    assert "acme only" not in content


def test_it_gives_each_settings_form_its_own_field_ids(cast: Cast) -> None:
    content = client_for(cast.owner, cast.tenant).get("/settings/").content.decode()
    assert content.count('id="workspace_name"') == 1
    assert content.count('id="key_name"') == 1
    assert 'for="key_name"' in content
