"""The campaigns page. Campaigns come with a later part of issue 5; until then the page says so
plainly (and still enforces its area's permission). Leads and templates have their own views."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from penguinmails.web import area_required, not_built_page
from tenants.permissions import Area


@area_required(Area.CAMPAIGNS)
def index(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Campaigns",
        summary="Campaigns are not built yet.",
        will_hold=[
            "Campaigns with multi-step sequences and delays between steps",
            "Sending schedules, daily limits and mailbox rotation",
            "Per-campaign opens, clicks, replies, bounces and unsubscribes",
        ],
    )
