"""Infrastructure page. The features come in a later issue; until then the page says so plainly
(and still enforces its area's permission)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from penguinmails.web import area_required, not_built_page
from tenants.permissions import Area


@area_required(Area.INFRASTRUCTURE)
def index(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Infrastructure",
        summary="Infrastructure is not built yet.",
        will_hold=[
            "The servers (VPS) provisioned for your workspace and their state",
            "Dedicated IP addresses and their reputation",
            "The mail servers your mailboxes run on",
        ],
    )
