"""Lead lists and suppressions through /api/v1: members by id, field errors, the live-campaign
guard, forced lifting of hard bounces, read-only viewers and the outsider from another tenant."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Campaign, Lead, LeadList, Suppression
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def _leads(cast: Cast, *emails: str) -> list[int]:
    with schema_context(cast.tenant.schema_name):
        return [Lead.objects.create(email=e).pk for e in emails]


def test_it_creates_lists_and_manages_their_members(cast: Cast) -> None:
    api = client_for(cast.member, cast.tenant, api=True)
    ids = _leads(cast, "ann@alpha.example", "bob@beta.example")
    created = api.post("/api/v1/lists", {"name": "  Q4   targets ", "description": "cold"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "Q4 targets" and body["lead_count"] == 0
    list_id = body["id"]

    added = api.post(f"/api/v1/lists/{list_id}/leads", {"lead_ids": [*ids, 999999]}, format="json")
    assert added.status_code == 200, added.content
    assert added.json() == {"changed": 2, "unknown_ids": [999999]}
    again = api.post(f"/api/v1/lists/{list_id}/leads", {"lead_ids": ids}, format="json")
    assert again.json()["changed"] == 0  # idempotent
    assert api.get(f"/api/v1/lists/{list_id}").json()["lead_count"] == 2
    assert api.get(f"/api/v1/leads?list={list_id}").json()["count"] == 2

    removed = api.post(
        f"/api/v1/lists/{list_id}/leads/remove", {"lead_ids": ids[:1]}, format="json"
    )
    assert removed.json() == {"changed": 1, "unknown_ids": []}
    renamed = api.patch(f"/api/v1/lists/{list_id}", {"name": "Q4"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Q4"
    listing = api.get("/api/v1/lists").json()
    assert [(r["name"], r["lead_count"]) for r in listing["results"]] == [("Q4", 1)]

    assert api.delete(f"/api/v1/lists/{list_id}").status_code == 204
    with schema_context(cast.tenant.schema_name):
        assert not LeadList.objects.exists() and Lead.objects.count() == 2  # leads stay


def test_it_refuses_bad_list_input_with_field_errors(cast: Cast) -> None:
    api = client_for(cast.admin, cast.tenant, api=True)
    error = assert_error(api.post("/api/v1/lists", {"name": ""}, format="json"), 400)
    assert "name" in error["fields"]
    list_id = api.post("/api/v1/lists", {"name": "A"}, format="json").json()["id"]
    assert_error(api.post("/api/v1/lists", {"name": "A"}, format="json"), 409)
    error = assert_error(
        api.post(f"/api/v1/lists/{list_id}/leads", {"lead_ids": []}, format="json"), 400
    )
    assert "lead_ids" in error["fields"]
    error = assert_error(
        api.post(f"/api/v1/lists/{list_id}/leads", {"lead_ids": ["x"]}, format="json"), 400
    )
    assert "lead_ids" in error["fields"]
    error = assert_error(api.patch(f"/api/v1/lists/{list_id}", {"owner": "me"}, format="json"), 400)
    assert "owner" in error["fields"]


def test_it_keeps_a_list_a_live_campaign_targets(cast: Cast) -> None:
    api = client_for(cast.admin, cast.tenant, api=True)
    list_id = api.post("/api/v1/lists", {"name": "Live"}, format="json").json()["id"]
    with schema_context(cast.tenant.schema_name):
        campaign = Campaign.objects.create(name="Running one", status="running")
        campaign.lead_lists.add(list_id)
    assert_error(api.delete(f"/api/v1/lists/{list_id}"), 409)
    with schema_context(cast.tenant.schema_name):
        Campaign.objects.filter(pk=campaign.pk).update(status="archived")
    assert api.delete(f"/api/v1/lists/{list_id}").status_code == 204


def test_it_adds_and_lifts_suppressions(cast: Cast) -> None:
    api = key_client(cast.tenant, role="admin").client
    created = api.post(
        "/api/v1/suppressions", {"values": ["Someone@Example.com", "spam.example"]}, format="json"
    )
    assert created.status_code == 201, created.content
    values = {(r["value"], r["is_domain"], r["reason"]) for r in created.json()}
    assert values == {("someone@example.com", False, "manual"), ("spam.example", True, "manual")}
    error = assert_error(
        api.post("/api/v1/suppressions", {"values": ["not an@"]}, format="json"), 400
    )
    assert error["fields"]
    with schema_context(cast.tenant.schema_name):
        assert Suppression.objects.count() == 2  # the bad call wrote nothing
        bounced = Suppression.objects.create(value="gone@example.org", reason="bounced")
    found = api.get("/api/v1/suppressions?q=example.org").json()["results"]
    assert [r["value"] for r in found] == ["gone@example.org"]
    assert_error(api.delete(f"/api/v1/suppressions/{bounced.pk}"), 409)
    assert api.delete(f"/api/v1/suppressions/{bounced.pk}?force=true").status_code == 204
    manual = api.get("/api/v1/suppressions?reason=manual").json()["results"]
    assert api.delete(f"/api/v1/suppressions/{manual[0]['id']}").status_code == 204
    with schema_context(cast.tenant.schema_name):
        assert Suppression.objects.count() == 1


def test_it_lets_a_viewer_read_lists_but_not_change_them(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        lead_list = LeadList.objects.create(name="Read me")
    api = client_for(cast.viewer, cast.tenant, api=True)
    assert api.get("/api/v1/lists").json()["count"] == 1
    assert api.get("/api/v1/suppressions").status_code == 200
    assert_error(api.post("/api/v1/lists", {"name": "No"}, format="json"), 403)
    assert_error(api.delete(f"/api/v1/lists/{lead_list.pk}"), 403)
    assert_error(api.post("/api/v1/suppressions", {"values": ["a@b.example"]}, format="json"), 403)


def test_it_shows_an_outsider_nothing_and_lets_them_change_nothing(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        lead_list = LeadList.objects.create(name="Acme only")
        lead = Lead.objects.create(email="ann@alpha.example")
        suppression = Suppression.objects.create(value="x@acme.example", reason="manual")
    # The outsider on their own tenant's host sees their own (empty) tenant, not Acme's rows.
    own = client_for(cast.outsider, cast.other_tenant, api=True)
    assert own.get("/api/v1/lists").json()["count"] == 0
    assert_error(own.get(f"/api/v1/lists/{lead_list.pk}"), 404)
    assert_error(own.delete(f"/api/v1/lists/{lead_list.pk}"), 404)
    assert_error(
        own.post(f"/api/v1/lists/{lead_list.pk}/leads", {"lead_ids": [lead.pk]}, format="json"),
        404,
    )
    assert_error(own.delete(f"/api/v1/suppressions/{suppression.pk}?force=true"), 404)
    # On Acme's host the outsider is no member; a key of theirs is refused there too.
    intruder = client_for(cast.outsider, cast.tenant, api=True)
    assert intruder.get("/api/v1/lists").status_code in (401, 403)
    foreign_key = key_client(cast.other_tenant, host=cast.tenant).client
    assert foreign_key.get("/api/v1/suppressions").status_code in (401, 403)
    with schema_context(cast.tenant.schema_name):
        assert LeadList.objects.get().name == "Acme only"
        assert Suppression.objects.count() == 1 and not lead_list.leads.exists()
