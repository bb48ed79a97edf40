"""The campaign page's progress, results table and chart, the polled progress part, and the
overview page: what they show, who may open them, and the outsider who cannot."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Campaign, CampaignStatus
from tests.analytics.conftest import World
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def _set_status(cast: Cast, world: World, status: str) -> None:
    with schema_context(cast.tenant.schema_name):
        # Test setup: the state machine's moves are tested in tests/campaigns.
        Campaign.objects.filter(pk=world.campaign.pk).update(status=status)


def test_it_shows_results_progress_and_a_chart_on_the_campaign_page(
    cast: Cast, world: World
) -> None:
    _set_status(cast, world, CampaignStatus.RUNNING)
    web = client_for(cast.viewer, cast.tenant)
    response = web.get(f"/campaigns/{world.campaign.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    # Progress counts messages: fetched right after the page loads, then polled.
    progress_url = f"/campaigns/{world.campaign.pk}/progress/"
    assert f'<div id="campaign-progress" hx-get="{progress_url}" hx-trigger="load"' in html
    part = web.get(progress_url).content.decode()
    assert 'hx-trigger="every 5s"' in part and "2 of 4 leads done (50%)" in part
    assert '<td data-status="queued">1</td>' in part
    total = html.split('id="stats-total"')[1].split("</tr>")[0]
    assert '<td data-counter="sent">4</td>' in total
    assert '<span class="muted small" data-rate="delivery_rate">80.0%</span>' in total
    assert '<span class="muted small" data-rate="open_rate">50.0%</span>' in total
    assert '<td class="muted" data-counter="machine">1 / 1</td>' in total
    assert f'id="stats-variant-{world.b.pk}"' in html and "Intro B" in html
    assert '<svg role="img" aria-label="Spring: messages per day"' in html
    assert "<script" not in html.split('id="stats-chart"')[1].split("</figure>")[0]
    assert "http://kozea" not in html and "cdn" not in html.lower()
    week = web.get(f"/campaigns/{world.campaign.pk}/?days=1").content.decode()
    assert '<td data-counter="sent">1</td>' in week.split('id="stats-total"')[1].split("</tr>")[0]
    assert web.get(f"/campaigns/{world.campaign.pk}/?days=0").status_code == 400
    assert web.get(f"/campaigns/{world.campaign.pk}/?days=soon").status_code == 400


def test_it_polls_progress_only_while_the_campaign_runs(cast: Cast, world: World) -> None:
    web = client_for(cast.member, cast.tenant)
    url = f"/campaigns/{world.campaign.pk}/progress/"
    _set_status(cast, world, CampaignStatus.RUNNING)
    part = web.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert part.startswith('<div id="campaign-progress" hx-get=') and "<html" not in part
    _set_status(cast, world, CampaignStatus.COMPLETED)
    part = web.get(url).content.decode()
    assert "hx-trigger" not in part and "2 of 4 leads done" in part
    page = web.get(f"/campaigns/{world.campaign.pk}/").content.decode()
    assert 'hx-trigger="every 5s"' not in page and 'id="stats-table"' in page


def test_it_leaves_results_off_a_draft(cast: Cast, world: World) -> None:
    html = client_for(cast.owner, cast.tenant).get(f"/campaigns/{world.campaign.pk}/")
    assert html.status_code == 200 and 'id="campaign-stats"' not in html.content.decode()


def test_it_shows_the_overview_across_campaigns(cast: Cast, world: World) -> None:
    web = client_for(cast.viewer, cast.tenant)
    assert 'href="/campaigns/overview/"' in web.get("/campaigns/").content.decode()
    response = web.get("/campaigns/overview/")
    assert response.status_code == 200
    html = response.content.decode()
    row = html.split(f'id="overview-campaign-{world.campaign.pk}"')[1].split("</tr>")[0]
    assert "Spring" in row and '<td data-counter="sent">4</td>' in row
    assert '<svg role="img" aria-label="All campaigns: messages per day"' in html
    assert web.get("/campaigns/overview/?days=1").status_code == 200
    assert web.get("/campaigns/overview/?days=400").status_code == 400


def test_it_keeps_the_outsider_out(cast: Cast, world: World) -> None:
    _set_status(cast, world, CampaignStatus.RUNNING)
    web = client_for(cast.outsider, cast.other_tenant)
    assert web.get(f"/campaigns/{world.campaign.pk}/progress/").status_code == 404
    overview = web.get("/campaigns/overview/")
    assert overview.status_code == 200 and "Spring" not in overview.content.decode()
    acme_host = client_for(cast.outsider, cast.tenant)
    for url in (f"/campaigns/{world.campaign.pk}/progress/", "/campaigns/overview/"):
        response = acme_host.get(url)
        assert response.status_code in (302, 404) and "Spring" not in response.content.decode()


def _chart(html: str) -> str:
    return html.split('id="stats-chart"')[1].split("</figure>")[0]


def test_the_chart_is_drawn_again_when_its_numbers_move_and_only_then(
    cast: Cast, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's SVG is cached under a digest of what it is drawn from: the same numbers are
    not drawn twice, and new numbers are drawn at once (never a stale chart)."""
    from campaigns.services.stats import Bump, bump
    from campaigns.views import stats as views

    _set_status(cast, world, CampaignStatus.RUNNING)
    drawn: list[str] = []
    real = views._draw
    monkeypatch.setattr(views, "_draw", lambda *a, **k: drawn.append("x") or real(*a, **k))
    web = client_for(cast.viewer, cast.tenant)
    url = f"/campaigns/{world.campaign.pk}/"
    first = _chart(web.get(url).content.decode())
    again = _chart(web.get(url).content.decode())
    assert first == again and len(drawn) <= 1  # 0 when a run before this one drew it
    count = len(drawn)
    with schema_context(cast.tenant.schema_name):
        variant = world.a
        # A number no earlier run drew (the cache outlives a test run).
        sent = random.randint(1_000, 10**9)
        bump([Bump(world.campaign.pk, variant.step_id, variant.pk, world.today, "sent", sent)])
    moved = _chart(web.get(url).content.decode())
    assert moved != first and len(drawn) == count + 1
    assert '<svg role="img" aria-label="Spring: messages per day"' in moved
    # The outsider's tenant has no such campaign: a 404, and no chart of ours.
    outsider = client_for(cast.outsider, cast.other_tenant)
    assert outsider.get(url).status_code == 404


def test_the_chart_is_drawn_when_the_cache_is_unreachable(
    cast: Cast, world: World, settings: Any
) -> None:
    _set_status(cast, world, CampaignStatus.RUNNING)
    web = client_for(cast.viewer, cast.tenant)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "KEY_FUNCTION": "django_tenants.cache.make_key",
            "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        }
    }
    response = web.get(f"/campaigns/{world.campaign.pk}/")
    assert response.status_code == 200
    assert '<svg role="img" aria-label="Spring: messages per day"' in _chart(
        response.content.decode()
    )
