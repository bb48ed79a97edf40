"""/api/v1/api-keys: created with the secret shown once, stored hashed, revocable."""

from __future__ import annotations

from django.db import connection
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for, host_of


def _text_columns_containing(needle: str) -> list[str]:
    """Every text-like column of every table in the database whose value contains `needle`."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_schema, table_name, column_name FROM information_schema.columns
            WHERE data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
              AND table_schema NOT IN ('pg_catalog', 'information_schema')
            """
        )
        for schema, table, column in cursor.fetchall():
            cursor.execute(
                f'SELECT 1 FROM "{schema}"."{table}" '  # noqa: S608 (names from the catalog)
                f'WHERE strpos("{column}"::text, %s) > 0 LIMIT 1',
                [needle],
            )
            if cursor.fetchone():
                found.append(f"{schema}.{table}.{column}")
    return found


def test_it_shows_a_new_key_once_and_stores_only_its_hash(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    response = client.post("/api/v1/api-keys", {"name": "CRM sync", "role": "member"})
    assert response.status_code == 201, response.content
    body = response.json()
    plaintext = body["key"]
    assert plaintext.startswith(f"pm_{body['prefix']}_")
    assert body["role"]["slug"] == "member" and body["is_active"] is True
    assert body["created_by"] == "owner@acme.test"

    listed = client.get("/api/v1/api-keys")
    assert [k["name"] for k in listed.json()["results"]] == ["CRM sync"]
    assert "key" not in listed.json()["results"][0]
    assert plaintext not in listed.content.decode()
    one = client.get(f"/api/v1/api-keys/{body['id']}")
    assert "key" not in one.json() and plaintext not in one.content.decode()

    secret = plaintext.split("_", 2)[2]
    assert _text_columns_containing(secret) == []
    assert _text_columns_containing(plaintext) == []
    # The scan does find what is stored: the public prefix, in the key table.
    assert "public.tenants_apikey.prefix" in _text_columns_containing(body["prefix"])

    # And the key it printed works, with the member role it was given.
    by_key = APIClient(HTTP_HOST=host_of(cast.tenant), HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert by_key.get("/api/v1/me").json()["role"]["slug"] == "member"


def test_it_defaults_a_new_key_to_the_member_role(cast: Cast) -> None:
    client = client_for(cast.admin, cast.tenant, api=True)
    body = client.post("/api/v1/api-keys", {"name": "Default"}).json()
    assert body["role"]["slug"] == "member"


def test_it_explains_invalid_keys_field_by_field(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    error = assert_error(client.post("/api/v1/api-keys", {}), 400, "validation_error")
    assert "name" in error["fields"]
    error = assert_error(client.post("/api/v1/api-keys", {"name": "x" * 101}), 400)
    assert "name" in error["fields"]
    error = assert_error(client.post("/api/v1/api-keys", {"name": "A", "role": "owner"}), 400)
    assert "role" in error["fields"]
    error = assert_error(client.post("/api/v1/api-keys", {"name": "A", "role": "nope"}), 400)
    assert "role" in error["fields"]
    error = assert_error(
        client.post("/api/v1/api-keys", data="{not json", content_type="application/json"), 400
    )
    assert error["code"] == "parse_error"
    assert not ApiKey.objects.filter(tenant=cast.tenant).exists()


def test_it_revokes_a_key_by_delete_or_action(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant, api=True)
    first = key_client(cast.tenant)
    second = key_client(cast.tenant)
    assert client.delete(f"/api/v1/api-keys/{first.key.pk}").status_code == 204
    response = client.post(f"/api/v1/api-keys/{second.key.pk}/revoke")
    assert response.status_code == 200
    assert response.json()["is_active"] is False and response.json()["revoked_at"]
    for revoked in (first, second):
        assert_error(revoked.client.get("/api/v1/me"), 401)
        assert ApiKey.objects.get(pk=revoked.key.pk).revoked_at is not None
    assert_error(client.post(f"/api/v1/api-keys/{first.key.pk}/revoke"), 409, "conflict")
    active = client.get("/api/v1/api-keys?is_active=true").json()
    assert active["count"] == 0
    assert client.get("/api/v1/api-keys?is_active=false").json()["count"] == 2


def test_it_lets_a_key_revoke_itself(cast: Cast) -> None:
    kc = key_client(cast.tenant, role="admin")
    assert kc.client.delete(f"/api/v1/api-keys/{kc.key.pk}").status_code == 204
    assert_error(kc.client.get("/api/v1/me"), 401)


def test_it_refuses_keys_to_viewers_and_members(cast: Cast) -> None:
    existing = key_client(cast.tenant)
    for user in (cast.viewer, cast.member):
        client = client_for(user, cast.tenant, api=True)
        assert_error(client.get("/api/v1/api-keys"), 403, "permission_denied")
        assert_error(client.post("/api/v1/api-keys", {"name": "mine"}), 403)
        assert_error(client.delete(f"/api/v1/api-keys/{existing.key.pk}"), 403)
        assert_error(client.post(f"/api/v1/api-keys/{existing.key.pk}/revoke"), 403)
    # A member-role key cannot mint more keys either.
    member_key = key_client(cast.tenant, role="member")
    assert_error(member_key.client.post("/api/v1/api-keys", {"name": "mine"}), 403)
    assert not ApiKey.objects.filter(name="mine").exists()
    assert ApiKey.objects.get(pk=existing.key.pk).revoked_at is None


def test_it_hides_another_tenants_keys(cast: Cast) -> None:
    acme = key_client(cast.tenant)
    for client in (
        client_for(cast.outsider, cast.other_tenant, api=True),
        key_client(cast.other_tenant, role="admin").client,
    ):
        assert_error(client.get(f"/api/v1/api-keys/{acme.key.pk}"), 404)
        assert_error(client.delete(f"/api/v1/api-keys/{acme.key.pk}"), 404)
        assert_error(client.post(f"/api/v1/api-keys/{acme.key.pk}/revoke"), 404)
        listed = client.get("/api/v1/api-keys").json()["results"]
        assert acme.key.pk not in {k["id"] for k in listed}
    assert ApiKey.objects.get(pk=acme.key.pk).revoked_at is None
    assert acme.client.get("/api/v1/me").status_code == 200
