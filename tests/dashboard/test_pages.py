from __future__ import annotations

from typing import Any

import pytest
from django.test.utils import CaptureQueriesContext

from tenants.models import Membership, Role
from tenants.permissions import Area
from tests.conftest import Cast, client_for
from tests.dashboard.helpers import PAGES, custom_member


def test_it_renders_every_page_for_the_owner(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    for path, _area in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"Acme Agency" in response.content, path


def test_it_shows_navigation_to_every_area_for_the_owner(cast: Cast) -> None:
    content = client_for(cast.owner, cast.tenant).get("/").content.decode()
    for label in (
        "Campaigns", "Leads", "Templates", "Mailboxes", "Domains",
        "Infrastructure", "Billing", "Team", "Settings",
    ):  # fmt: skip
        assert f">{label}</a>" in content, label


def test_it_marks_one_sidebar_entry_active_the_most_specific(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    for path, label in (
        ("/campaigns/leads/", "Leads"),
        ("/campaigns/templates/", "Templates"),
        ("/campaigns/", "Campaigns"),
        ("/", "Home"),
    ):
        active = [link.label for link in client.get(path).wsgi_request.nav if link.active]
        assert active == [label], path


def test_it_says_plainly_that_unbuilt_areas_are_not_built(cast: Cast) -> None:
    client = client_for(cast.owner, cast.tenant)
    # Every area with a page is built now (campaigns: issue 5, tests/campaigns covers it); the
    # "not built" page stays for areas to come and must not show on a built one.
    content = client.get("/campaigns/").content.decode()
    assert "Not built yet" not in content and "New campaign" in content


def test_it_shows_real_numbers_on_the_home_page(cast: Cast) -> None:
    response = client_for(cast.owner, cast.tenant).get("/")
    stats = response.context["stats"]
    assert stats["members"] == Membership.objects.filter(tenant=cast.tenant, is_active=True).count()
    assert stats["pending_invitations"] == 0
    assert stats["active_api_keys"] == 0
    assert "acme.localhost" in response.content.decode()
    assert response.context["role"].slug == "owner"


def test_it_hides_key_counts_from_roles_without_api_key_access(cast: Cast) -> None:
    response = client_for(cast.viewer, cast.tenant).get("/")
    assert response.context["stats"]["active_api_keys"] is None
    assert "Active API keys" not in response.content.decode()


def test_it_keeps_the_home_page_query_count_flat(
    cast: Cast, django_assert_max_num_queries: pytest.FixtureRequest
) -> None:
    from django.db import connection

    from tenants.services.apikeys import create_api_key

    client = client_for(cast.owner, cast.tenant)
    client.get("/")  # warm caches (content types, template loaders)
    # 14 queries with the checklist, figures and mailbox health (tests/dashboard/test_home.py),
    # plus django-tenants' `SET search_path` when the schema changes.
    with django_assert_max_num_queries(24):  # type: ignore[operator]
        assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as before:
        client.get("/")
    for n in range(5):
        custom_member(cast.tenant, f"extra{n}@acme.test", campaigns="read")
        create_api_key(cast.tenant, name=f"key {n}")
    with CaptureQueriesContext(connection) as after:
        client.get("/")
    assert len(after) == len(before)


def test_it_refuses_billing_to_a_custom_role_without_billing(cast: Cast) -> None:
    user, _ = custom_member(cast.tenant, "writer@acme.test", campaigns="write", billing="none")
    client = client_for(user, cast.tenant)
    response = client.get("/billing/")
    assert response.status_code == 403
    home = client.get("/").content.decode()
    assert ">Billing</a>" not in home
    assert ">Campaigns</a>" in home
    assert client.get("/campaigns/").status_code == 200


@pytest.mark.parametrize(("path", "area"), [(p, a) for p, a in PAGES if a is not None])
def test_it_refuses_each_area_page_to_a_role_without_that_area(
    cast: Cast, path: str, area: Area
) -> None:
    others = {a.value: "write" for a in Area if a != area}
    if area == Area.SETTINGS:
        others["api_keys"] = "none"  # the settings page also opens with API key access
    user, _ = custom_member(cast.tenant, "narrow@acme.test", **others)
    response = client_for(user, cast.tenant).get(path)
    assert response.status_code == 403
    assert b"does not allow" in response.content


def test_it_redirects_an_outsider_to_login_on_every_page(cast: Cast) -> None:
    client = client_for(cast.outsider, cast.tenant)
    for path, _area in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/"), path


def test_it_shows_the_suspension_banner(cast: Cast) -> None:
    from tenants.services.tenancy import suspend_tenant

    suspend_tenant(cast.tenant, reason="unpaid invoice")
    content = client_for(cast.viewer, cast.tenant).get("/").content.decode()
    assert "This workspace is suspended: unpaid invoice" in content


def test_it_shows_a_verification_banner_until_the_email_is_verified(cast: Cast) -> None:
    from django.utils import timezone

    cast.member.email_verified_at = None
    cast.member.save(update_fields=["email_verified_at"])
    page = client_for(cast.member, cast.tenant).get("/").content.decode()
    assert "Please verify your email" in page
    assert 'method="post" action="/account/verify/resend/"' in page
    cast.member.email_verified_at = timezone.now()
    cast.member.save(update_fields=["email_verified_at"])
    assert (
        "Please verify your email"
        not in client_for(cast.member, cast.tenant).get("/").content.decode()
    )


def test_it_shows_the_logout_button_as_a_post_form(cast: Cast) -> None:
    content = client_for(cast.owner, cast.tenant).get("/").content.decode()
    assert 'method="post" action="/logout/"' in content


def test_it_renders_a_404_page_for_unknown_paths(cast: Cast) -> None:
    response = client_for(cast.owner, cast.tenant).get("/no-such-page/")
    assert response.status_code == 404
    assert b"Not found" in response.content


def test_it_lists_builtin_roles_read_only_on_the_roles_page(cast: Cast) -> None:
    response = client_for(cast.admin, cast.tenant).get("/team/roles/")
    builtin = [row["role"].slug for row in response.context["builtin_rows"]]
    assert builtin == ["owner", "admin", "member", "viewer"]
    owner_role = Role.objects.get(tenant=None, slug="owner")
    assert f"/team/roles/{owner_role.pk}/edit/" not in response.content.decode()


def test_it_links_the_sandbox_mail_page_only_in_debug_mode(cast: Cast, settings: Any) -> None:
    client = client_for(cast.owner, cast.tenant)
    settings.DEBUG = False
    assert ">Sandbox mail</a>" not in client.get("/").content.decode()
    settings.DEBUG = True
    assert '<a href="/sandbox/mail/">Sandbox mail</a>' in client.get("/").content.decode()
