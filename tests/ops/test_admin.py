"""Staff admin on the public host: lists, search, filters, and actions that call services."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.test import Client

from tenants.models import ApiKey, AuditEvent, Tenant, TenantStatus, User
from tenants.services.apikeys import create_api_key
from tests.conftest import PASSWORD, Cast, client_for


@pytest.fixture
def staff(cast: Cast) -> User:
    return User.objects.create_superuser("staff@penguinmails.example.com", PASSWORD)


@pytest.fixture
def admin_client(staff: User) -> Client:
    return client_for(staff, None)


def messages_of(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


def test_it_sends_non_staff_to_the_admin_login(cast: Cast) -> None:
    response = client_for(cast.owner, None).get("/admin/tenants/tenant/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_is_not_reachable_on_a_tenant_host(cast: Cast, staff: User) -> None:
    assert Client(HTTP_HOST="acme.localhost").get("/admin/").status_code == 404
    assert client_for(cast.owner, cast.tenant).get("/admin/").status_code == 404
    assert client_for(cast.owner, cast.tenant).get("/admin/login/").status_code == 404


def test_it_lists_tenants_with_members_and_hides_the_template(
    cast: Cast, admin_client: Client
) -> None:
    response = admin_client.get("/admin/tenants/tenant/")
    assert response.status_code == 200
    tenants = list(response.context["cl"].result_list)
    assert {t.slug for t in tenants} >= {"acme", "globex"}
    assert not any(t.is_template for t in tenants)
    acme = next(t for t in tenants if t.slug == "acme")
    assert acme._member_count == 4
    assert b"Acme Agency" in response.content
    template = Tenant.objects.get(is_template=True)
    assert admin_client.get(f"/admin/tenants/tenant/{template.pk}/change/").status_code == 302


def test_it_searches_and_filters_tenants(cast: Cast, admin_client: Client) -> None:
    found = admin_client.get("/admin/tenants/tenant/", {"q": "glob"}).context["cl"].result_list
    assert [t.slug for t in found] == ["globex"]
    Tenant.objects.filter(pk=cast.other_tenant.pk).update(status=TenantStatus.SUSPENDED)
    suspended = admin_client.get("/admin/tenants/tenant/", {"status__exact": "suspended"})
    assert [t.slug for t in suspended.context["cl"].result_list] == ["globex"]


def test_it_shows_a_tenant_with_its_hosts_and_allows_no_add_or_delete(
    cast: Cast, admin_client: Client
) -> None:
    page = admin_client.get(f"/admin/tenants/tenant/{cast.tenant.pk}/change/")
    assert page.status_code == 200
    assert b"acme.localhost" in page.content
    assert admin_client.get("/admin/tenants/tenant/add/").status_code == 403
    delete = admin_client.get(f"/admin/tenants/tenant/{cast.tenant.pk}/delete/")
    assert delete.status_code == 403


def test_it_renames_a_tenant_but_keeps_its_slug(cast: Cast, admin_client: Client) -> None:
    response = admin_client.post(
        f"/admin/tenants/tenant/{cast.tenant.pk}/change/",
        {
            "name": "Acme Renamed",
            "slug": "hacked",
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "1",
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
            "domains-0-id": str(cast.tenant.domains.get().pk),
            "domains-0-tenant": str(cast.tenant.pk),
        },
    )
    assert response.status_code == 302, response.content[:2000]
    cast.tenant.refresh_from_db()
    assert cast.tenant.name == "Acme Renamed"
    assert cast.tenant.slug == "acme"


def test_it_suspends_and_reactivates_through_the_service(
    cast: Cast, admin_client: Client, staff: User
) -> None:
    url = "/admin/tenants/tenant/"
    response = admin_client.post(
        url, {"action": "suspend", "_selected_action": [cast.tenant.pk]}, follow=True
    )
    assert "acme: suspended." in messages_of(response)
    cast.tenant.refresh_from_db()
    assert cast.tenant.status == TenantStatus.SUSPENDED
    event = AuditEvent.objects.filter(tenant=cast.tenant, action="tenant.status_changed").latest(
        "created_at"
    )
    assert event.actor == staff
    assert event.detail["to"] == "suspended"

    # One message per tenant: the illegal move is reported, the legal one still happens.
    response = admin_client.post(
        url,
        {"action": "suspend", "_selected_action": [cast.tenant.pk, cast.other_tenant.pk]},
        follow=True,
    )
    shown = messages_of(response)
    assert "acme: Tenant 'acme' is suspended; cannot become suspended." in shown
    assert "globex: suspended." in shown

    response = admin_client.post(
        url, {"action": "reactivate", "_selected_action": [cast.tenant.pk]}, follow=True
    )
    assert "acme: reactivated." in messages_of(response)
    cast.tenant.refresh_from_db()
    assert cast.tenant.status == TenantStatus.ACTIVE


def test_it_lists_and_searches_users(cast: Cast, admin_client: Client) -> None:
    response = admin_client.get("/admin/tenants/user/", {"q": "acme.test"})
    emails = {u.email for u in response.context["cl"].result_list}
    assert emails == {"owner@acme.test", "admin@acme.test", "member@acme.test", "viewer@acme.test"}
    staff_only = admin_client.get("/admin/tenants/user/", {"is_staff__exact": "1"})
    assert [u.email for u in staff_only.context["cl"].result_list] == [
        "staff@penguinmails.example.com"
    ]
    change = admin_client.get(f"/admin/tenants/user/{cast.member.pk}/change/")
    assert change.status_code == 200
    assert b"acme" in change.content  # the membership inline


def test_it_adds_a_user_by_email_with_a_password(cast: Cast, admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/tenants/user/add/",
        {
            "email": "New.Staff@Example.com",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.staff@example.com")
    assert authenticate(None, email=user.email, password="a-long-enough-passphrase") == user

    duplicate = admin_client.post(
        "/admin/tenants/user/add/",
        {
            "email": "OWNER@acme.test",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert duplicate.status_code == 200
    assert "email" in duplicate.context["adminform"].form.errors


def test_it_searches_and_filters_memberships(cast: Cast, admin_client: Client) -> None:
    by_tenant = admin_client.get("/admin/tenants/membership/", {"q": "globex"})
    assert [m.user.email for m in by_tenant.context["cl"].result_list] == [cast.outsider.email]
    viewers = admin_client.get("/admin/tenants/membership/", {"role": "viewer"})
    assert [m.user.email for m in viewers.context["cl"].result_list] == [cast.viewer.email]
    by_email = admin_client.get("/admin/tenants/membership/", {"q": "owner@acme"})
    assert [m.tenant.slug for m in by_email.context["cl"].result_list] == ["acme"]


@pytest.mark.parametrize("model", ["role", "invitation", "auditevent", "membership"])
def test_it_shows_records_staff_cannot_change_by_hand(
    cast: Cast, admin_client: Client, model: str
) -> None:
    assert admin_client.get(f"/admin/tenants/{model}/").status_code == 200
    assert admin_client.get(f"/admin/tenants/{model}/add/").status_code == 403


def test_it_never_shows_api_key_hashes_and_revokes_through_the_service(
    cast: Cast, admin_client: Client, staff: User
) -> None:
    new = create_api_key(cast.tenant, name="Zapier")
    listing = admin_client.get("/admin/tenants/apikey/")
    assert listing.status_code == 200
    assert f"pm_{new.key.prefix}_…".encode() in listing.content
    page = admin_client.get(f"/admin/tenants/apikey/{new.key.pk}/change/")
    assert page.status_code == 200
    assert new.key.key_hash.encode() not in page.content
    assert new.key.key_hash.encode() not in listing.content
    assert new.plaintext.encode() not in page.content

    response = admin_client.post(
        "/admin/tenants/apikey/",
        {"action": "revoke", "_selected_action": [new.key.pk]},
        follow=True,
    )
    assert any("revoked" in m for m in messages_of(response))
    key = ApiKey.objects.get(pk=new.key.pk)
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_key.revoked", actor=staff).exists()

    again = admin_client.post(
        "/admin/tenants/apikey/",
        {"action": "revoke", "_selected_action": [new.key.pk]},
        follow=True,
    )
    assert any("already revoked" in m for m in messages_of(again))


def test_it_shows_the_admin_index_to_staff(admin_client: Client) -> None:
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    for model in ("tenant", "user", "membership", "role", "invitation", "apikey", "auditevent"):
        assert f"/admin/tenants/{model}/".encode() in response.content
