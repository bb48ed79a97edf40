"""GET /api/v1/events: this tenant's events with filters; read-only; the outsider sees none."""

from __future__ import annotations

import pytest

from campaigns.tracking import links
from campaigns.tracking.flush import flush
from tests.api.conftest import assert_error
from tests.conftest import Cast, client_for
from tests.tracking.conftest import Sent, call

pytestmark = pytest.mark.django_db
BASE = "https://track.customer.test"


def _events(sent: Sent) -> None:
    call("GET", links.open_url(BASE, sent.tenant.pk, sent.pk))
    call(
        "GET", links.open_url(BASE, sent.tenant.pk, sent.pk), headers={"User-Agent": "Mozilla/5.0"}
    )
    call("GET", links.click_url(BASE, sent.tenant.pk, sent.pk, "https://example.com/"))
    flush()


def test_it_lists_events_with_filters(sent: Sent, cast: Cast) -> None:
    _events(sent)
    api = client_for(cast.viewer, cast.tenant, api=True)
    rows = api.get("/api/v1/events").json()["results"]
    assert len(rows) == 3 and {r["message_id"] for r in rows} == {sent.pk}
    machine = api.get("/api/v1/events?is_machine=true").json()["results"]
    assert [(r["kind"], r["machine_reason"]) for r in machine] == [
        ("open", "proxy: Apple Mail Privacy Protection")
    ]
    people = api.get(f"/api/v1/events?campaign={sent.campaign_pk}&kind=open&is_machine=false")
    assert len(people.json()["results"]) == 1
    clicks = api.get(f"/api/v1/events?message={sent.pk}&kind=click").json()["results"]
    assert clicks[0]["url"] == "https://example.com/"
    assert api.get(f"/api/v1/events?campaign={sent.campaign_pk + 1000}").json()["results"] == []
    assert api.get(f"/api/v1/events/{clicks[0]['id']}").json()["kind"] == "click"
    owner = client_for(cast.owner, cast.tenant, api=True)
    assert owner.post("/api/v1/events", {}, format="json").status_code == 405
    assert owner.delete(f"/api/v1/events/{clicks[0]['id']}").status_code == 405


def test_it_shows_the_outsider_nothing(sent: Sent, cast: Cast) -> None:
    _events(sent)
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/events").json()["results"] == []
    assert_error(api.get("/api/v1/events/1"), 404)
    on_acme = client_for(cast.outsider, cast.tenant, api=True)
    assert on_acme.get("/api/v1/events").status_code in (401, 403, 404)
