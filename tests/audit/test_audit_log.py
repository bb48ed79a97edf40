"""The audit log: append-only, and a tenant's owner reads its own (page and API), nobody else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import AppendOnly, AuditEvent, AuditSource, Role, Tenant, User
from tenants.services.apikeys import create_api_key
from tenants.services.audit import record
from tests.conftest import PASSWORD, Cast, client_for, host_of


def events(cast: Cast) -> tuple[AuditEvent, AuditEvent]:
    mine = record("campaign.start", tenant=cast.tenant, actor=cast.member, campaign="Spring")
    theirs = record("campaign.start", tenant=cast.other_tenant, actor=cast.outsider, campaign="Q3")
    return mine, theirs


def test_it_refuses_to_change_or_delete_an_event_through_the_orm(cast: Cast) -> None:
    event = record("domain.verify", tenant=cast.tenant, actor=cast.owner, domain="acme.test")
    event.action = "domain.forged"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="domain.forged")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "domain.verify"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE tenants_auditevent SET action = 'forged' WHERE id = %s",
        "UPDATE tenants_auditevent SET actor_id = NULL, actor_email = '' WHERE id = %s",
        "DELETE FROM tenants_auditevent WHERE id = %s",
    ],
)
def test_postgresql_refuses_to_change_or_delete_an_event(cast: Cast, statement: str) -> None:
    event = record("domain.verify", tenant=cast.tenant, actor=cast.owner)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement, [event.pk])
    fresh = AuditEvent.objects.get(pk=event.pk)
    assert (fresh.action, fresh.actor_id) == ("domain.verify", cast.owner.pk)


def test_a_deleted_users_events_keep_their_address(cast: Cast) -> None:
    gone = User.objects.create_user("gone@acme.test", PASSWORD)
    event = record("lead.import", tenant=cast.tenant, actor=gone)
    gone.delete()  # ON DELETE SET NULL: the one update the trigger lets through
    fresh = AuditEvent.objects.get(pk=event.pk)
    assert fresh.actor_id is None and fresh.actor_email == "gone@acme.test"


def test_the_owner_and_an_admin_read_their_tenants_log_page(cast: Cast) -> None:
    mine, theirs = events(cast)
    for user in (cast.owner, cast.admin):
        response = client_for(user, cast.tenant).get("/audit/")
        assert response.status_code == 200
        shown = list(response.context["page"].object_list)
        assert mine in shown and theirs not in shown
        assert all(e.tenant_id == cast.tenant.pk for e in shown)
        assert b"Spring" in response.content and b"Q3" not in response.content


def test_members_viewers_and_outsiders_do_not_read_it(cast: Cast) -> None:
    events(cast)
    assert client_for(cast.member, cast.tenant).get("/audit/").status_code == 403
    assert client_for(cast.viewer, cast.tenant).get("/audit/").status_code == 403
    # Not a member of acme: sent to acme's login page, shown nothing.
    outsider = client_for(cast.outsider, cast.tenant).get("/audit/")
    assert outsider.status_code == 302 and outsider["Location"].startswith("/login/")
    # On its own host the outsider reads its own tenant's log only.
    response = client_for(cast.outsider, cast.other_tenant).get("/audit/")
    assert response.status_code == 200
    assert {e.tenant_id for e in response.context["page"].object_list} == {cast.other_tenant.pk}


def test_the_sidebar_and_team_page_link_the_log_for_those_who_may_read_it(cast: Cast) -> None:
    for user, shown in ((cast.owner, True), (cast.admin, True), (cast.member, False)):
        client = client_for(user, cast.tenant)
        sidebar = [link.label for link in client.get("/").wsgi_request.nav]
        assert ("Audit log" in sidebar) is shown, user
        assert (b'href="/audit/"' in client.get("/team/").content) is shown, user
    viewer = client_for(cast.viewer, cast.tenant).get("/team/")
    assert b'href="/audit/"' not in viewer.content
    active = [
        link.label
        for link in client_for(cast.owner, cast.tenant).get("/audit/").wsgi_request.nav
        if link.active
    ]
    assert active == ["Audit log"]


def test_the_page_filters_by_actor_action_source_and_day(cast: Cast) -> None:
    record("campaign.start", tenant=cast.tenant, actor=cast.member)
    record("campaign.pause", tenant=cast.tenant, actor=cast.owner)
    record("domain.verify", tenant=cast.tenant, actor=cast.owner)
    week_ago = timezone.now() - timedelta(days=7)
    AuditEvent.objects.create(
        tenant=cast.tenant, actor_email="owner@acme.test", action="lead.export", created_at=week_ago
    )
    record("support.look", tenant=cast.tenant, actor=cast.owner, source=AuditSource.SUPPORT)
    owner = client_for(cast.owner, cast.tenant)

    def actions(**query: str) -> list[str]:
        response = owner.get("/audit/", query)
        assert response.status_code == 200, response.content
        return [e.action for e in response.context["page"].object_list]

    assert set(actions(actor="member@acme.test")) == {"campaign.start"}
    assert set(actions(action="campaign.")) == {"campaign.start", "campaign.pause"}
    assert actions(action="domain.verify") == ["domain.verify"]
    assert actions(source="support") == ["support.look"]
    today = timezone.now().date().isoformat()
    assert "lead.export" not in actions(since=today)
    assert actions(until=week_ago.date().isoformat()) == ["lead.export"]
    refused = owner.get("/audit/", {"since": today, "until": "2000-01-01"})
    assert refused.status_code == 400
    assert "until" in refused.context["form"].errors
    assert owner.get("/audit/", {"since": "not-a-day"}).status_code == 400


def test_the_page_is_paginated(cast: Cast) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(tenant=cast.tenant, action=f"test.event{i}") for i in range(60)
    )
    owner = client_for(cast.owner, cast.tenant)
    first = owner.get("/audit/", {"action": "test."})
    assert len(first.context["page"].object_list) == 50
    second = owner.get("/audit/", {"action": "test.", "page": "2"})
    assert len(second.context["page"].object_list) == 10
    assert b"action=test." in first.content  # the next link keeps the filter


def test_the_api_gives_the_owner_its_tenants_log_only(cast: Cast) -> None:
    mine, theirs = events(cast)
    response = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/audit")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert mine.pk in ids and theirs.pk not in ids
    row = next(r for r in response.json()["results"] if r["id"] == mine.pk)
    assert row == {
        "id": mine.pk,
        "created_at": row["created_at"],
        "action": "campaign.start",
        "source": "app",
        "by_staff": False,
        "actor": "member@acme.test",
        "detail": {"campaign": "Spring"},
    }


def test_the_api_refuses_members_viewers_their_keys_and_outsiders(cast: Cast) -> None:
    events(cast)
    for user in (cast.member, cast.viewer):
        response = client_for(user, cast.tenant, api=True).get("/api/v1/audit")
        assert response.status_code == 403, user
    outsider = client_for(cast.outsider, cast.tenant, api=True).get("/api/v1/audit")
    assert outsider.status_code in (401, 403)
    viewer_key = create_api_key(cast.tenant, name="ro", role=_role("viewer"), actor=cast.owner)
    response = _keyed(cast.tenant, viewer_key.plaintext).get("/api/v1/audit")
    assert response.status_code == 403
    admin_key = create_api_key(cast.tenant, name="ops", role=_role("admin"), actor=cast.owner)
    assert _keyed(cast.tenant, admin_key.plaintext).get("/api/v1/audit").status_code == 200
    # The outsider's own key, sent to acme's host, is not acme's.
    their_key = create_api_key(
        cast.other_tenant, name="x", role=_role("admin"), actor=cast.outsider
    )
    assert _keyed(cast.tenant, their_key.plaintext).get("/api/v1/audit").status_code in (401, 403)
    results = _keyed(cast.other_tenant, their_key.plaintext).get("/api/v1/audit").json()["results"]
    assert results and {r["detail"].get("campaign") for r in results} <= {"Q3", None}


def test_the_api_filters_and_says_which_filter_is_wrong(cast: Cast) -> None:
    events(cast)
    record("support.look", tenant=cast.tenant, actor=cast.owner, source=AuditSource.SUPPORT)
    api = client_for(cast.owner, cast.tenant, api=True)
    staff_only = api.get("/api/v1/audit", {"source": "support"}).json()["results"]
    assert [(r["action"], r["by_staff"]) for r in staff_only] == [("support.look", True)]
    by_member = api.get("/api/v1/audit", {"actor": "member@acme.test"}).json()["results"]
    assert [r["action"] for r in by_member] == ["campaign.start"]
    for query, field in (
        ({"since": "yesterday"}, "since"),
        ({"source": "hacker"}, "source"),
        ({"actor": "not an address"}, "actor"),
        ({"since": "2030-01-02", "until": "2030-01-01"}, "until"),
    ):
        response = api.get("/api/v1/audit", query)
        assert response.status_code == 400, query
        assert field in str(response.json()), response.json()
    assert api.post("/api/v1/audit", {}).status_code == 405
    assert api.delete("/api/v1/audit").status_code == 405


def _role(slug: str) -> Role:
    return Role.objects.get(tenant=None, slug=slug)


def _keyed(tenant: Tenant, key: str) -> APIClient:
    return APIClient(HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Bearer {key}")


def test_the_page_and_api_run_the_same_queries_for_5_or_45_events(cast: Cast) -> None:
    owner = client_for(cast.owner, cast.tenant)
    api = client_for(cast.owner, cast.tenant, api=True)

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            assert owner.get("/audit/").status_code == 200
        with CaptureQueriesContext(connection) as listing:
            assert api.get("/api/v1/audit").status_code == 200
        return len(page), len(listing)

    def add(n: int) -> None:
        for i in range(n):
            actor = (cast.owner, cast.member, cast.admin)[i % 3]
            record(f"test.step{i % 7}", tenant=cast.tenant, actor=actor, n=i)

    add(5)
    few = queries()
    add(40)
    assert queries() == few
