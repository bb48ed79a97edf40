"""Hostile input gets the API's 400/404/413 error naming the field, never a 500."""

from __future__ import annotations

import json

import pytest
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from campaigns.models import Lead
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, host_of


def _post_raw(client, path: str, body: str | bytes):  # type: ignore[no-untyped-def]
    return client.generic("POST", path, body, content_type="application/json")


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def _lead_count(cast: Cast) -> int:
    with schema_context(cast.tenant.schema_name):
        return Lead.objects.count()


def test_it_refuses_a_nul_byte_in_a_leads_first_name(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    response = kc.client.post(
        "/api/v1/leads", {"email": "ana@example.com", "first_name": "An\x00a"}, format="json"
    )
    error = assert_error(response, 400, "validation_error")
    assert error["fields"] == {"first_name": ["Null characters are not allowed."]}
    # Nested in a bulk body, the path to the value is named.
    response = kc.client.post(
        "/api/v1/leads/bulk",
        {"leads": [{"email": "a@example.com"}, {"email": "b@example.com", "company": "\x00"}]},
        format="json",
    )
    assert list(assert_error(response, 400)["fields"]) == ["leads.1.company"]
    assert _lead_count(cast) == 0


def test_it_refuses_a_lone_surrogate(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    body = '{"email": "ana@example.com", "last_name": "\\ud800"}'
    error = assert_error(_post_raw(kc.client, "/api/v1/leads", body), 400, "validation_error")
    assert list(error["fields"]) == ["last_name"]
    assert "surrogate" in error["fields"]["last_name"][0]
    # In a key of an object too.
    body = '{"email": "ana@example.com", "custom_fields": {"\\udfff": "x"}}'
    error = assert_error(_post_raw(kc.client, "/api/v1/leads", body), 400)
    assert list(error["fields"]) == ["custom_fields"]


@pytest.mark.parametrize("depth", [40, 5000])
def test_it_refuses_custom_fields_nested_deep(cast: Cast, depth: int) -> None:
    kc = key_client(cast.tenant)
    body = '{"email": "ana@example.com", "custom_fields": ' + _nested(depth) + "}"
    error = assert_error(_post_raw(kc.client, "/api/v1/leads", body), 400, "validation_error")
    (field,) = error["fields"]
    assert field.startswith("custom_fields")
    assert "Nested deeper than" in error["fields"][field][0]
    assert _lead_count(cast) == 0


def test_it_limits_json_fields_of_serializers(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    # A role's permissions: one level of area -> level.
    response = kc.client.post(
        "/api/v1/roles", {"name": "Deep", "permissions": {"leads": {"x": "read"}}}, format="json"
    )
    assert list(assert_error(response, 400)["fields"]) == ["permissions"]
    # A preview's custom values: bounded in encoded size (each value alone is allowed).
    created = kc.client.post(
        "/api/v1/templates", {"name": "T", "subject": "Hi", "text_body": "Hi"}, format="json"
    )
    assert created.status_code == 201, created.content
    big = {f"k{i}": "x" * 1900 for i in range(40)}
    response = kc.client.post(
        f"/api/v1/templates/{created.json()['id']}/preview", {"custom": big}, format="json"
    )
    error = assert_error(response, 400, "validation_error")
    assert error["fields"] == {"custom": ["At most 65,536 bytes of JSON."]}


def test_it_answers_a_body_past_the_limit_with_413_json(cast: Cast, settings) -> None:  # type: ignore[no-untyped-def]
    kc = key_client(cast.tenant)
    body = json.dumps({"email": "ana@example.com", "first_name": "x" * (10 * 1024 * 1024)})
    response = _post_raw(kc.client, "/api/v1/leads", body)
    error = assert_error(response, 413, "request_too_large")
    assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,}" in error["message"]
    # A small body still works.
    ok = kc.client.post("/api/v1/leads", {"email": "ana@example.com"}, format="json")
    assert ok.status_code == 201, ok.content


def test_it_answers_malformed_ids_in_urls_with_404(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    for path in (
        "/api/v1/leads/imports/not-a-uuid/errors/",
        "/api/v1/leads/imports/not-a-uuid/",
        "/api/v1/leads/imports/99999999999999999999999/errors/",
        "/api/v1/leads/imports/99999999999999999999999/",
        "/api/v1/leads/99999999999999999999999",
        "/api/v1/leads/abc",
        "/api/v1/campaigns/99999999999999999999999/stats",
        "/api/v1/members/%00",
        "/api/v1/campaigns/1/steps/%0Ax/",
    ):
        assert_error(kc.client.get(path), 404, "not_found")
    # Writes to unknown paths too: JSON, not Django's HTML CSRF page (a key needs no CSRF token).
    strict = APIClient(HTTP_HOST=host_of(cast.tenant), enforce_csrf_checks=True)
    strict.credentials(HTTP_AUTHORIZATION=f"Bearer {kc.plaintext}")
    assert_error(strict.post("/api/v1/leads/1.5/replied/", {}), 404, "not_found")
    assert_error(strict.delete("/api/v1/campaigns/x/steps/%0A/"), 404, "not_found")


def test_it_refuses_nan_and_malformed_json(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    assert_error(_post_raw(kc.client, "/api/v1/leads", '{"email": NaN}'), 400, "parse_error")
    assert_error(_post_raw(kc.client, "/api/v1/leads", '{"email": '), 400, "parse_error")
    assert_error(_post_raw(kc.client, "/api/v1/leads", b'{"email": "\xff"}'), 400, "parse_error")


def test_it_refuses_nul_in_query_parameters(cast: Cast) -> None:
    kc = key_client(cast.tenant)
    for path, param in (
        ("/api/v1/leads?q=%00", "q"),
        ("/api/v1/leads?page=1&tag=a%00b", "tag"),
        ("/api/v1/members?email=%00", "email"),
        ("/api/v1/suppressions?q=x%00", "q"),
        ("/api/v1/stats/overview?days=%00", "days"),
        ("/api/v1/suppressions?%00=1", "non_field_errors"),
    ):
        error = assert_error(kc.client.get(path), 400, "validation_error")
        assert error["fields"] == {param: ["Null characters are not allowed."]}, path
    # A percent sign that is not a NUL is an ordinary search.
    assert kc.client.get("/api/v1/suppressions?q=100%25").status_code == 200
