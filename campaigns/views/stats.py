"""Campaign analytics pages: the statistics and live progress parts of the campaign page, the
progress partial htmx polls, and the overview across campaigns. Numbers come from
campaigns.services.stats (rollups); charts are SVG drawn here by pygal, no JavaScript."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import pygal
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

from campaigns.models import Campaign, CampaignStatus
from campaigns.services import campaigns as svc
from campaigns.services import stats
from penguinmails.errors import ValidationFailed
from tenants.permissions import Area
from tenants.services.access import Principal
from tenants.web import area_required, principal_of

log = logging.getLogger(__name__)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
CHARTED = ("sent", "opened", "clicked", "replied")
WINDOWS = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (None, "All time")]
# Statuses in which messages are still being created or sent: the progress part polls then.
LIVE = (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING)
_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    font_family="system-ui, sans-serif",
    colors=("#2f6fed", "#12b76a", "#f79009", "#7a5af8"),
)


def days_of(request: HttpRequest) -> int | None:
    """The `days` query parameter: absent or empty is all time; anything else must be 1..366."""
    raw = request.GET.get("days", "")
    if raw in ("", "all"):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(
            "Invalid input.", fields={"days": ["A whole number of days."]}
        ) from None


def daily_chart(series: list[stats.Day], *, title: str) -> SafeString:
    """A line chart of sent, opened, clicked and replied per day, as inline SVG. The numbers
    are also in a table beside it; the chart is decoration for sighted readers.

    Drawing it is most of a dashboard page's time (pygal, ~10 ms), and its input changes only
    as mail is sent: the SVG is cached under a digest of everything it is drawn from (the
    title and every day's numbers), so a cached chart is never stale, and a page whose numbers
    moved draws a new one. The cache's keys carry the tenant's schema. A cache that cannot be
    reached only costs the drawing."""
    key = _chart_key(series, title)
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - the chart is drawn without the cache
        cached = None
    if isinstance(cached, str):
        return mark_safe(cached)  # noqa: S308 - what _draw returned, stored as is
    svg = _draw(series, title=title)
    try:
        cache.set(key, str(svg), CHART_CACHE_SECONDS)
    except Exception:  # noqa: BLE001 - drawn, just not kept
        log.warning("chart cache unavailable", exc_info=True)
    return svg


CHART_CACHE_SECONDS = 24 * 3600


def _chart_key(series: list[stats.Day], title: str) -> str:
    digest = hashlib.sha256(title.encode())
    for d in series:
        figures = ",".join(str(getattr(d.figures, name)) for name in CHARTED)
        digest.update(f"|{d.day.isoformat()}:{figures}".encode())
    return f"campaigns:chart:{len(series)}:{digest.hexdigest()}"


def _draw(series: list[stats.Day], *, title: str) -> SafeString:
    chart = pygal.Line(
        title=None,
        width=900,
        height=280,
        style=_STYLE,
        js=[],  # pygal's tooltips script comes from a CDN: none
        disable_xml_declaration=True,
        show_dots=len(series) <= 31,
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(series) // 8),
        truncate_label=-1,
        legend_at_bottom=True,
        margin=8,
    )
    chart.x_labels = [d.day.strftime("%b %d") for d in series]
    for name in CHARTED:
        chart.add(name.title(), [getattr(d.figures, name) for d in series])
    # pygal always writes an inline <script> holding the config of its tooltip script, which we
    # do not load (js=[]): dropped, so the page runs no chart code and needs no CSP exception.
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    # pygal's output holds only our numbers, dates and fixed series names; the title is escaped.
    return mark_safe(  # noqa: S308
        svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1)
    )


def stats_context(principal: Principal, campaign: Campaign, days: int | None) -> dict[str, Any]:
    """What the campaign page shows about sending: numbers and chart from the rollups. The
    progress part is not counted here: it counts messages (the one read that grows with the
    campaign), so the page fetches it right after loading (htmx) and then polls it."""
    numbers = stats.campaign_stats(principal, campaign, days=days)
    return {
        "stats": numbers,
        "chart": daily_chart(numbers.series, title=f"{campaign.name}: messages per day")
        if numbers.series
        else "",
        "days": days,
        "windows": WINDOWS,
    }


@area_required(Area.CAMPAIGNS)
def campaign_progress(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The live progress part of the campaign page (htmx polls it while the campaign runs)."""
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    return render(
        request,
        "campaigns_dash/_progress.html",
        {
            "campaign": campaign,
            "progress": stats.progress(principal, campaign),
            "polling": campaign.status in LIVE,
        },
    )


@area_required(Area.CAMPAIGNS)
def overview(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    days = days_of(request)
    numbers = stats.overview(principal, days=days)
    return render(
        request,
        "campaigns_dash/overview.html",
        {
            "overview": numbers,
            "chart": daily_chart(numbers.series, title="All campaigns: messages per day")
            if numbers.series
            else "",
            "days": days,
            "windows": WINDOWS,
        },
    )
