"""Resolving an `unknown` message: resend (same Message-ID) or accept as sent, through the API
(`POST /api/v1/messages/{id}/resolve`), the campaign's messages page and `manage.py campaigns
accept`; counted on the campaign page; refused for a viewer (403) and invisible to the outsider
of the second tenant (404)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import CampaignDailyStat, Message, MessageStatus
from penguinmails.models import RunningCampaign
from tenants.models import AuditEvent
from tests.api.conftest import assert_error, key_client
from tests.campaign_ops.conftest import World, messages_of, run
from tests.conftest import Cast, client_for
from tests.infra_lifecycle.conftest import run_jobs
from tests.sending.conftest import run_send_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def _make_unknown(cast: Cast, world: World, index: int = 0) -> Message:
    """A sent step-1 message as the pipeline leaves it when the connection dies after DATA."""
    target = [m for m in messages_of(cast, world.launch) if m.status == MessageStatus.SENT][index]
    with schema_context(cast.tenant.schema_name):
        Message.objects.filter(pk=target.pk).update(
            status=MessageStatus.UNKNOWN, stopped_by="unknown", stop_reason="connection lost"
        )
        CampaignDailyStat.objects.update(sent=0, delivered=0)  # unknown is not counted as sent
        return Message.objects.get(pk=target.pk)


def _reload(cast: Cast, message: Message) -> Message:
    with schema_context(cast.tenant.schema_name):
        return Message.objects.get(pk=message.pk)


def _sent_rollup(cast: Cast) -> int:
    with schema_context(cast.tenant.schema_name):
        return int(CampaignDailyStat.objects.aggregate(n=Sum("sent"))["n"] or 0)


def _audited(cast: Cast, action: str, message: Message) -> list[str]:
    return [
        e.detail["via"]
        for e in AuditEvent.objects.filter(
            tenant=cast.tenant, action=action, detail__message_id=message.pk
        )
    ]


# --- API -----------------------------------------------------------------------------------------
def test_it_resends_an_unknown_message_through_the_api(cast: Cast, world: World) -> None:
    unknown = _make_unknown(cast, world)
    api = key_client(cast.tenant, role="member").client
    response = api.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "resend"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "queued" and body["message_id"] == unknown.message_id
    assert _audited(cast, "message.resent", unknown) == ["api"]

    run("tick", "--tenant", "acme")
    run_send_jobs(cast.tenant)
    assert _reload(cast, unknown).status == MessageStatus.SENT
    copies = [m for m in world.sandbox.messages() if m["Message-ID"] == unknown.message_id]
    assert len(copies) == 2  # the same Message-ID: a receiver that has it drops the repeat


def test_a_resent_message_goes_out_with_the_next_jobs_not_the_next_visit(
    cast: Cast, world: World
) -> None:
    """The campaign is not due again for an hour; the resend makes it due, and the scheduler run
    it asks for sends the message (no tick command, no waiting for the idle revisit)."""
    unknown = _make_unknown(cast, world)
    later = timezone.now() + dt.timedelta(hours=1)
    RunningCampaign.objects.filter(campaign_id=world.launch.pk).update(next_run_at=later)
    api = key_client(cast.tenant, role="member").client
    response = api.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "resend"})
    assert response.status_code == 200, response.content
    due = RunningCampaign.objects.get(tenant=cast.tenant, campaign_id=world.launch.pk)
    assert due.next_run_at <= timezone.now()
    run_jobs(limit=50)
    assert _reload(cast, unknown).status == MessageStatus.SENT


def test_it_accepts_an_unknown_message_as_sent_through_the_api(cast: Cast, world: World) -> None:
    unknown = _make_unknown(cast, world)
    api = client_for(cast.member, cast.tenant, api=True)
    body = api.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "accept"}).json()
    assert body["status"] == "sent" and body["sent_at"] and body["stopped_by"] == ""
    assert _sent_rollup(cast) == 1
    assert _audited(cast, "message.accepted", unknown) == ["api"]
    # Resolved once: a second resolution is an illegal move, and nothing was counted twice.
    again = api.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "accept"})
    assert "only an unknown message" in assert_error(again, 409, "illegal_transition")["message"]
    assert _sent_rollup(cast) == 1


def test_it_refuses_other_statuses_and_bad_actions(cast: Cast, world: World) -> None:
    unknown = _make_unknown(cast, world)
    sent = next(m for m in messages_of(cast, world.launch) if m.status == MessageStatus.SENT)
    api = key_client(cast.tenant, role="admin").client
    assert_error(
        api.post(f"/api/v1/messages/{sent.pk}/resolve", {"action": "resend"}),
        409,
        "illegal_transition",
    )
    error = assert_error(
        api.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "forget"}),
        400,
        "validation_error",
    )
    assert set(error["fields"]) == {"action"}
    assert_error(api.post(f"/api/v1/messages/{unknown.pk}/resolve", {}), 400)
    assert_error(api.post("/api/v1/messages/999999/resolve", {"action": "accept"}), 404)
    assert _reload(cast, unknown).status == MessageStatus.UNKNOWN
    assert _reload(cast, sent).status == MessageStatus.SENT


def test_it_lets_a_viewer_read_but_not_resolve(cast: Cast, world: World) -> None:
    unknown = _make_unknown(cast, world)
    api = client_for(cast.viewer, cast.tenant, api=True)
    assert api.get(f"/api/v1/messages/{unknown.pk}").json()["status"] == "unknown"
    assert_error(api.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "accept"}), 403)
    web = client_for(cast.viewer, cast.tenant)
    page = web.get(f"/campaigns/{world.launch.pk}/messages/").content.decode()
    assert 'id="unknown-messages"' in page and "1 message in <em>unknown</em>" in page
    assert "/resolve/" not in page  # no buttons for a reader
    url = f"/campaigns/{world.launch.pk}/messages/{unknown.pk}/resolve/"
    assert web.post(url, {"action": "accept"}).status_code == 403
    assert _reload(cast, unknown).status == MessageStatus.UNKNOWN


def test_it_shows_the_outsider_nothing_to_resolve(cast: Cast, world: World) -> None:
    unknown = _make_unknown(cast, world)
    own = client_for(cast.outsider, cast.other_tenant, api=True)
    assert_error(own.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "accept"}), 404)
    globex_key = key_client(cast.other_tenant, role="admin").client
    response = globex_key.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "resend"})
    assert_error(response, 404)
    acme_host = client_for(cast.outsider, cast.tenant, api=True)
    response = acme_host.post(f"/api/v1/messages/{unknown.pk}/resolve", {"action": "accept"})
    assert response.status_code in (401, 403)
    url = f"/campaigns/{world.launch.pk}/messages/{unknown.pk}/resolve/"
    assert (
        client_for(cast.outsider, cast.other_tenant).post(url, {"action": "accept"}).status_code
        == 404
    )
    intruder = client_for(cast.outsider, cast.tenant).post(url, {"action": "accept"})
    assert intruder.status_code in (302, 404)
    assert intruder.status_code != 302 or intruder["Location"].startswith("/login/")
    assert _reload(cast, unknown).status == MessageStatus.UNKNOWN
    assert _audited(cast, "message.accepted", unknown) == []


# --- dashboard -----------------------------------------------------------------------------------
def test_it_counts_and_resolves_unknown_messages_on_the_dashboard(cast: Cast, world: World) -> None:
    first = _make_unknown(cast, world, 0)
    second = _make_unknown(cast, world, 0)
    web = client_for(cast.member, cast.tenant)
    progress = web.get(f"/campaigns/{world.launch.pk}/progress/").content.decode()
    assert '<td data-status="unknown">2</td>' in progress
    assert 'id="unknown-count"' in progress and "2 unknown" in progress
    page = web.get(f"/campaigns/{world.launch.pk}/messages/?status=unknown").content.decode()
    assert "2 messages in <em>unknown</em>" in page and page.count('value="resend"') == 2
    # The buttons sit in the status cell, not in a last column that scrolls out of sight.
    assert page.count('class="resolve-form"') == 2 and "<th>Resolve</th>" not in page

    base = f"/campaigns/{world.launch.pk}/messages"
    done = web.post(f"{base}/{first.pk}/resolve/", {"action": "resend"}, follow=True)
    assert done.redirect_chain[-1][0] == f"{base}/"
    assert "queued again with its Message-ID" in done.content.decode()
    resent = _reload(cast, first)
    assert resent.status == MessageStatus.QUEUED and resent.message_id == first.message_id
    web.post(f"{base}/{second.pk}/resolve/", {"action": "accept"})
    assert _reload(cast, second).status == MessageStatus.SENT
    assert _audited(cast, "message.resent", first) == ["dashboard"]
    assert _audited(cast, "message.accepted", second) == ["dashboard"]
    refused = web.post(f"{base}/{second.pk}/resolve/", {"action": "resend"}, follow=True)
    assert "only an unknown message is resolved" in refused.content.decode()
    page = web.get(f"{base}/").content.decode()
    assert 'id="unknown-messages"' not in page


# --- command -------------------------------------------------------------------------------------
def test_it_accepts_an_unknown_message_from_the_command_line(cast: Cast, world: World) -> None:
    unknown = _make_unknown(cast, world)
    cid = str(world.launch.pk)
    output = run("accept", cid, "--tenant", "acme", "--message", str(unknown.pk))
    assert f"Message {unknown.pk} to {unknown.to_email} accepted as sent." in output
    assert _reload(cast, unknown).status == MessageStatus.SENT
    assert _sent_rollup(cast) == 1
    assert _audited(cast, "message.accepted", unknown) == ["manage.py campaigns accept"]
