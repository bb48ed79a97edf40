"""Dashboard: the workspace's live blocklist listings (which list, since when, where to ask for
removal). The infrastructure page shows the quarantine reason beside the IP as well."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from reputation.services import blocklists
from tenants.permissions import Area
from tenants.web import area_required, principal_of


@area_required(Area.INFRASTRUCTURE)
def listings(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    rows = blocklists.tenant_listings(principal.tenant, domains=principal.allows(Area.DOMAINS))
    urls = blocklists.removal_urls()
    items = [(r, urls.get(r.zone, "")) for r in rows]
    return render(request, "reputation/listings.html", {"items": items})
