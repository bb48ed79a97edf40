"""The suppression list page: what it shows and filters, adding and lifting, a bad batch
refused whole, a read-only viewer, and the outsider from another tenant who sees and changes
nothing."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Suppression
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def _suppressions(cast: Cast) -> list[tuple[str, str]]:
    with schema_context(cast.tenant.schema_name):
        return sorted(Suppression.objects.values_list("value", "reason"))


def test_it_lists_adds_and_lifts_suppressions(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        bounced = Suppression.objects.create(value="gone@example.org", reason="bounced")
    web = client_for(cast.member, cast.tenant)
    page = web.get("/campaigns/leads/suppressions/")
    assert page.status_code == 200 and "gone@example.org" in page.content.decode()

    added = web.post(
        "/campaigns/leads/suppressions/add/",
        {"values": "Someone@Example.com\nspam.example, x@y.example"},
        follow=True,
    )
    assert "Suppressed 3" in added.content.decode()
    assert _suppressions(cast) == [
        ("gone@example.org", "bounced"),
        ("someone@example.com", "manual"),
        ("spam.example", "manual"),
        ("x@y.example", "manual"),
    ]
    filtered = web.get("/campaigns/leads/suppressions/?reason=bounced").content.decode()
    assert "gone@example.org" in filtered and "spam.example" not in filtered

    # A hard bounce is lifted only when the person says the address works now.
    refused = web.post(f"/campaigns/leads/suppressions/{bounced.pk}/lift/", follow=True)
    assert "force=true" in refused.content.decode() or "lift it only" in refused.content.decode()
    assert ("gone@example.org", "bounced") in _suppressions(cast)
    web.post(f"/campaigns/leads/suppressions/{bounced.pk}/lift/", {"force": "yes"})
    assert ("gone@example.org", "bounced") not in _suppressions(cast)


def test_it_refuses_a_bad_suppression_batch_whole(cast: Cast) -> None:
    web = client_for(cast.admin, cast.tenant)
    response = web.post(
        "/campaigns/leads/suppressions/add/", {"values": "ok@example.com\nnot an@"}, follow=True
    )
    assert response.status_code == 200
    assert "not an@" in response.content.decode() or "invalid" in response.content.decode().lower()
    assert _suppressions(cast) == []  # nothing half-written
    empty = web.post("/campaigns/leads/suppressions/add/", {"values": "  "}, follow=True)
    assert empty.status_code == 200 and _suppressions(cast) == []


def test_it_lets_a_viewer_read_suppressions_but_not_change_them(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        row = Suppression.objects.create(value="keep@example.com", reason="manual")
    web = client_for(cast.viewer, cast.tenant)
    page = web.get("/campaigns/leads/suppressions/").content.decode()
    assert "keep@example.com" in page and 'id="suppress-form"' not in page
    assert (
        web.post("/campaigns/leads/suppressions/add/", {"values": "a@b.example"}).status_code == 403
    )
    assert web.post(f"/campaigns/leads/suppressions/{row.pk}/lift/").status_code == 403
    assert _suppressions(cast) == [("keep@example.com", "manual")]


def test_it_shows_an_outsider_no_suppressions(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        row = Suppression.objects.create(value="acme-only@example.com", reason="bounced")
    own = client_for(cast.outsider, cast.other_tenant)
    assert "acme-only@example.com" not in own.get("/campaigns/leads/suppressions/").content.decode()
    assert (
        own.post(f"/campaigns/leads/suppressions/{row.pk}/lift/", {"force": "yes"}).status_code
        == 404
    )
    # On Acme's host they are nobody (sessions live in each tenant's schema): sent to log in.
    intruder = client_for(cast.outsider, cast.tenant)
    for response in (
        intruder.get("/campaigns/leads/suppressions/"),
        intruder.post(f"/campaigns/leads/suppressions/{row.pk}/lift/", {"force": "yes"}),
        intruder.post("/campaigns/leads/suppressions/add/", {"values": "x@y.example"}),
    ):
        assert response.status_code in (302, 403, 404), response.status_code
        assert response.status_code != 302 or response["Location"].startswith("/login/")
    assert _suppressions(cast) == [("acme-only@example.com", "bounced")]
