"""`/api/v1/messages` (and `/api/v1/campaigns/{id}/messages`): read-only, newest first, filters
with field errors, the fields, who may read, and the outsider who sees nothing of acme's."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Lead, Message, MessageStatus
from tests.api.conftest import assert_error, key_client
from tests.campaign_ops.conftest import World, messages_of
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = {
    "id", "campaign", "step", "variant", "lead", "mailbox", "to_email", "status", "message_id",
    "subject", "scheduled_for", "attempts", "stopped_by", "stop_reason", "smtp_code",
    "smtp_response", "sent_at", "bounced_at", "first_opened_at", "first_clicked_at", "replied_at",
    "unsubscribed_at", "open_count", "click_count", "machine_open_count", "machine_click_count",
}  # fmt: skip


def test_it_lists_messages_newest_first_with_their_fields(cast: Cast, world: World) -> None:
    api = key_client(cast.tenant, role="member").client
    body = api.get("/api/v1/messages").json()
    assert body["count"] == 6
    rows = body["results"]
    assert set(rows[0]) == FIELDS
    expected = sorted(messages_of(cast, world.launch), key=lambda m: (m.created_at, m.pk))
    assert [r["id"] for r in rows] == [m.pk for m in reversed(expected)]
    sent = next(r for r in rows if r["status"] == "sent")
    model = next(m for m in expected if m.pk == sent["id"])
    assert sent["campaign"] == world.launch.pk and sent["step"] == model.step_id
    assert sent["variant"] == model.variant_id and sent["lead"] == model.lead_id
    assert sent["mailbox"] == model.mailbox_id and sent["to_email"] == model.to_email
    assert sent["message_id"] == model.message_id and sent["subject"].startswith("Hello Lead")
    assert sent["smtp_code"] == 250 and sent["attempts"] == 1 and sent["sent_at"]
    queued = next(r for r in rows if r["status"] == "queued")
    assert queued["message_id"] is None and queued["sent_at"] is None

    page = api.get("/api/v1/messages?page_size=4&page=2").json()
    assert [r["id"] for r in page["results"]] == [r["id"] for r in rows[4:]]
    assert page["previous"] and page["next"] is None


def test_it_filters_by_campaign_status_lead_and_step(cast: Cast, world: World) -> None:
    api = client_for(cast.member, cast.tenant, api=True)
    messages = messages_of(cast, world.launch)
    first_step = min(m.step_id for m in messages)
    with schema_context(cast.tenant.schema_name):
        lead = Lead.objects.get(email="lead1@example.com")

    def ids(query: str) -> set[int]:
        response = api.get(f"/api/v1/messages?{query}")
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    assert ids(f"campaign={world.launch.pk}") == {m.pk for m in messages}
    assert ids(f"campaign={world.idle.pk}") == set()
    assert ids("status=sent") == {m.pk for m in messages if m.status == MessageStatus.SENT}
    assert ids("status=queued") == {m.pk for m in messages if m.status == MessageStatus.QUEUED}
    assert ids(f"lead={lead.pk}") == {m.pk for m in messages if m.lead_id == lead.pk}
    assert len(ids(f"lead={lead.pk}")) == 2
    assert ids(f"step={first_step}&status=sent") == {
        m.pk for m in messages if m.step_id == first_step
    }
    assert ids(f"step={first_step}&status=queued") == set()


def test_it_refuses_invalid_filters_with_field_errors(cast: Cast, world: World) -> None:
    api = client_for(cast.member, cast.tenant, api=True)
    error = assert_error(
        api.get("/api/v1/messages?status=lost&campaign=abc"), 400, "validation_error"
    )
    assert set(error["fields"]) == {"status", "campaign"}
    assert "lost" in error["fields"]["status"][0]
    error = assert_error(api.get("/api/v1/messages?lead=x&step=1.5z"), 400, "validation_error")
    assert set(error["fields"]) == {"lead", "step"}


def test_it_retrieves_one_message_and_404s_others(cast: Cast, world: World) -> None:
    api = client_for(cast.viewer, cast.tenant, api=True)
    target = messages_of(cast, world.launch)[0]
    body = api.get(f"/api/v1/messages/{target.pk}").json()
    assert set(body) == FIELDS
    assert (body["id"], body["status"], body["message_id"]) == (
        target.pk,
        target.status,
        target.message_id,
    )
    assert_error(api.get("/api/v1/messages/999999"), 404, "not_found")
    assert_error(api.get("/api/v1/messages/abc"), 404)


def test_it_lets_a_viewer_read_and_nobody_write(cast: Cast, world: World) -> None:
    target = messages_of(cast, world.launch)[0]
    viewer = client_for(cast.viewer, cast.tenant, api=True)
    assert viewer.get("/api/v1/messages").json()["count"] == 6
    assert_error(viewer.delete(f"/api/v1/messages/{target.pk}"), 403)
    owner = key_client(cast.tenant, role="admin").client
    assert_error(owner.post("/api/v1/messages", {"to_email": "x@example.com"}), 405)
    assert_error(owner.patch(f"/api/v1/messages/{target.pk}", {"status": "sent"}), 405)
    assert_error(owner.delete(f"/api/v1/messages/{target.pk}"), 405)
    assert messages_of(cast, world.launch)[0].status == target.status
    assert_error(client_for(None, cast.tenant, api=True).get("/api/v1/messages"), 401)


def test_it_lists_a_campaigns_messages_under_the_campaign(cast: Cast, world: World) -> None:
    api = client_for(cast.viewer, cast.tenant, api=True)
    body = api.get(f"/api/v1/campaigns/{world.launch.pk}/messages?status=queued").json()
    assert body["count"] == 3 and {r["campaign"] for r in body["results"]} == {world.launch.pk}
    assert api.get(f"/api/v1/campaigns/{world.idle.pk}/messages").json()["count"] == 0
    assert_error(api.get("/api/v1/campaigns/999999/messages"), 404, "not_found")


def test_it_shows_the_outsider_nothing_of_acmes(cast: Cast, world: World) -> None:
    target = messages_of(cast, world.launch)[0]
    own = client_for(cast.outsider, cast.other_tenant, api=True)
    assert own.get("/api/v1/messages").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }
    assert own.get(f"/api/v1/messages?campaign={world.launch.pk}").json()["count"] == 0
    assert_error(own.get(f"/api/v1/messages/{target.pk}"), 404)
    assert_error(own.get(f"/api/v1/campaigns/{world.launch.pk}/messages"), 404)
    globex_key = key_client(cast.other_tenant, role="admin").client
    assert_error(globex_key.get(f"/api/v1/messages/{target.pk}"), 404)
    # On acme's host, without a membership there: not let in.
    acme_host = client_for(cast.outsider, cast.tenant, api=True)
    assert acme_host.get("/api/v1/messages").status_code in (401, 403)
    assert acme_host.get(f"/api/v1/messages/{target.pk}").status_code in (401, 403)
    # Globex's key sent to acme's host is refused too.
    wrong_host = key_client(cast.other_tenant, role="admin", host=cast.tenant).client
    assert wrong_host.get("/api/v1/messages").status_code in (401, 403)
    with schema_context(cast.other_tenant.schema_name):
        assert Message.objects.count() == 0


def test_it_lists_a_page_in_a_fixed_number_of_queries(
    cast: Cast, world: World, django_assert_max_num_queries: object
) -> None:
    api = key_client(cast.tenant, role="member").client
    api.get("/api/v1/messages")  # warm: key lookup caches, tenant resolution
    with django_assert_max_num_queries(8):  # type: ignore[operator]  # auth, tenant, count, page
        assert len(api.get("/api/v1/messages").json()["results"]) == 6
