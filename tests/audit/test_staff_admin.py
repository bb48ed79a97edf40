"""Staff writes in the admin are audited, into the tenant's own log when they touch its data."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client

from tenants.adminsite import AuditedAdminMixin, StaffAdminSite
from tenants.models import AuditEvent, AuditSource, User
from tenants.services.audit import record
from tests.conftest import PASSWORD, Cast, client_for


@pytest.fixture
def staff(cast: Cast) -> User:
    return User.objects.create_superuser("staff@penguinmails.example.com", PASSWORD)


@pytest.fixture
def admin_client(staff: User) -> Client:
    return client_for(staff, None)


def staff_events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, source=AuditSource.ADMIN))


def test_every_registered_model_admin_is_audited() -> None:
    assert isinstance(admin.site, StaffAdminSite)
    assert admin.site._registry  # the apps' admins are registered on our site
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, AuditedAdminMixin), model


def test_a_change_is_recorded_with_the_fields_old_and_new_values(
    cast: Cast, admin_client: Client, staff: User
) -> None:
    response = admin_client.post(
        f"/admin/tenants/tenant/{cast.tenant.pk}/change/",
        {
            "name": "Acme Renamed",
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "1",
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
            "domains-0-id": str(cast.tenant.domains.get().pk),
            "domains-0-tenant": str(cast.tenant.pk),
        },
    )
    assert response.status_code == 302
    (event,) = staff_events("admin.change")
    assert event.tenant_id == cast.tenant.pk
    assert (event.actor, event.actor_email) == (staff, staff.email)
    assert event.detail["model"] == "tenants.tenant"
    assert event.detail["objects"] == [{"id": str(cast.tenant.pk), "repr": "Acme Renamed (acme)"}]
    assert event.detail["changes"] == {"name": ["Acme Agency", "Acme Renamed"]}
    assert event.detail["summary"] == "Changed Name."
    # The tenant's owner reads it in the workspace's log, marked as staff.
    page = client_for(cast.owner, cast.tenant).get("/audit/")
    assert event in page.context["page"].object_list
    assert b"Platform staff (admin)" in page.content
    # The outsider's workspace does not.
    other = client_for(cast.outsider, cast.other_tenant).get("/audit/")
    assert event not in other.context["page"].object_list


def test_an_addition_and_a_deletion_are_recorded_and_secrets_are_not(
    cast: Cast, admin_client: Client
) -> None:
    response = admin_client.post(
        "/admin/tenants/user/add/",
        {
            "email": "temp@example.com",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 302
    (added,) = staff_events("admin.add")
    assert added.tenant is None and added.detail["objects"][0]["repr"] == "temp@example.com"
    assert "a-long-enough-passphrase" not in str(added.detail)
    assert added.detail["changes"]["password1"] == ["(hidden)", "(hidden)"]

    user = User.objects.get(email="temp@example.com")
    confirm = admin_client.get(f"/admin/tenants/user/{user.pk}/delete/")
    assert confirm.status_code == 200 and not staff_events("admin.delete")
    response = admin_client.post(f"/admin/tenants/user/{user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    (deleted,) = staff_events("admin.delete")
    assert deleted.detail["objects"] == [{"id": str(user.pk), "repr": "temp@example.com"}]


def test_an_action_is_recorded_once_done_in_each_tenants_log(
    cast: Cast, admin_client: Client, staff: User
) -> None:
    response = admin_client.post(
        "/admin/tenants/tenant/",
        {"action": "suspend", "_selected_action": [cast.tenant.pk, cast.other_tenant.pk]},
    )
    assert response.status_code == 302
    events = {e.tenant_id: e for e in staff_events("admin.action")}
    assert set(events) == {cast.tenant.pk, cast.other_tenant.pk}
    acme = events[cast.tenant.pk]
    assert acme.detail["name"] == "suspend" and acme.detail["count"] == 1
    assert acme.detail["selected"] == 2  # how many rows the action ran over in all
    assert acme.actor == staff
    # The service the action called recorded its own event, marked as a staff write too.
    changed = AuditEvent.objects.get(tenant=cast.tenant, action="tenant.status_changed")
    assert (changed.source, changed.actor) == (AuditSource.ADMIN, staff)
    # Outside the admin, the same service's events are the workspace's own.
    outside = record("tenant.renamed", tenant=cast.tenant, actor=staff)
    assert outside.source == AuditSource.APP


def test_an_action_that_asks_first_is_recorded_only_when_confirmed(
    cast: Cast, admin_client: Client
) -> None:
    temp = User.objects.create_user("bulk@example.com", PASSWORD)
    url = "/admin/tenants/user/"
    asked = admin_client.post(url, {"action": "delete_selected", "_selected_action": [temp.pk]})
    assert asked.status_code == 200 and not AuditEvent.objects.filter(source="admin").exists()
    done = admin_client.post(
        url, {"action": "delete_selected", "_selected_action": [temp.pk], "post": "yes"}
    )
    assert done.status_code == 302
    (deleted,) = staff_events("admin.delete")
    assert deleted.detail["objects"][0]["repr"] == "bulk@example.com"
    assert not staff_events("admin.action")  # deletions are recorded row by row instead


def test_the_audit_log_is_read_only_in_the_admin(cast: Cast, admin_client: Client) -> None:
    event = AuditEvent.objects.create(tenant=cast.tenant, action="domain.verify")
    assert admin_client.get("/admin/tenants/auditevent/").status_code == 200
    change = admin_client.post(
        f"/admin/tenants/auditevent/{event.pk}/change/", {"action": "domain.forged"}
    )
    assert change.status_code == 403
    assert admin_client.post(f"/admin/tenants/auditevent/{event.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/tenants/auditevent/add/").status_code == 403
    bulk = admin_client.post(
        "/admin/tenants/auditevent/",
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert AuditEvent.objects.get(pk=event.pk).action == "domain.verify"


def test_the_admin_header_says_staging_on_a_staging_deployment(
    admin_client: Client, settings: Any
) -> None:
    assert b"PenguinMails staff (staging)" not in admin_client.get("/admin/").content
    settings.STAGING = True
    assert b"PenguinMails staff (staging)" in admin_client.get("/admin/").content
