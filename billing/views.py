"""Billing page. The features come in a later issue; until then the page says so plainly (and
still enforces its area's permission)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from penguinmails.web import area_required, not_built_page
from tenants.permissions import Area


@area_required(Area.BILLING)
def index(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Billing",
        summary="Billing is not built yet.",
        will_hold=[
            "Your plan and what infrastructure it includes",
            "Payment method, invoices and payment history",
            "Usage against your plan's limits",
        ],
    )
