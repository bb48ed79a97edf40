"""GET /api/v1/campaigns/{id}/stats and /api/v1/stats/overview: numbers, the days window and its
validation, who may read them, and the outsider who sees nothing."""

from __future__ import annotations

import pytest

from tests.analytics.conftest import World
from tests.api.conftest import assert_error
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def test_it_serves_a_campaigns_stats(cast: Cast, world: World) -> None:
    api = client_for(cast.viewer, cast.tenant, api=True)
    response = api.get(f"/api/v1/campaigns/{world.campaign.pk}/stats")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["campaign_id"] == world.campaign.pk and body["days"] is None
    totals = body["totals"]
    assert (totals["sent"], totals["opened"], totals["machine_opened"]) == (4, 2, 1)
    assert totals["rates"]["delivery_rate"] == 0.8 and totals["rates"]["open_rate"] == 0.5
    step1 = body["steps"][0]
    assert [v["template_name"] for v in step1["variants"]] == ["Intro", "Intro B"]
    assert step1["variants"][1]["rates"]["bounce_rate"] == 0.5
    assert len(body["series"]) == 11 and body["series"][-1]["sent"] == 1
    assert body["progress"]["percent"] == 50 and body["progress"]["messages"]["queued"] == 1
    # Same answer with a trailing slash; a window of one day.
    one = api.get(f"/api/v1/campaigns/{world.campaign.pk}/stats/?days=1").json()
    assert one["days"] == 1 and one["totals"]["sent"] == 1 and len(one["series"]) == 1


def test_it_refuses_a_bad_days_parameter(cast: Cast, world: World) -> None:
    api = client_for(cast.owner, cast.tenant, api=True)
    for value in ("0", "367", "abc", "-1"):
        error = assert_error(
            api.get(f"/api/v1/campaigns/{world.campaign.pk}/stats?days={value}"),
            400,
            "validation_error",
        )
        assert "days" in error["fields"], value
    assert "days" in assert_error(api.get("/api/v1/stats/overview?days=x"), 400)["fields"]
    assert_error(api.get("/api/v1/campaigns/999999/stats"), 404)


def test_it_serves_the_overview(cast: Cast, world: World) -> None:
    api = client_for(cast.member, cast.tenant, api=True)
    body = api.get("/api/v1/stats/overview").json()
    assert [c["name"] for c in body["campaigns"]] == ["Spring"]
    assert body["campaigns"][0]["sent"] == 4 and body["totals"]["clicked"] == 1
    assert body["totals"]["rates"]["reply_rate"] == 0.25
    assert api.get("/api/v1/stats/overview?days=1").json()["totals"]["sent"] == 1


def test_it_shows_the_outsider_nothing(cast: Cast, world: World) -> None:
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert_error(api.get(f"/api/v1/campaigns/{world.campaign.pk}/stats"), 404)
    body = api.get("/api/v1/stats/overview").json()
    assert body["campaigns"] == [] and body["totals"]["sent"] == 0 and body["series"] == []
    # On acme's host without a membership: not authenticated there.
    other = client_for(cast.outsider, cast.tenant, api=True)
    assert other.get(f"/api/v1/campaigns/{world.campaign.pk}/stats").status_code in (401, 403)
    assert client_for(None, cast.tenant, api=True).get("/api/v1/stats/overview").status_code == 401
