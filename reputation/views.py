"""Dashboard: the deliverability overview (each mailbox's, domain's and IP's latest reputation
score, worst first, with the parts it is made of, and the live blocklist listings) and the
listings page (which list, since when, where to ask for removal); a history page per sending
domain and per IP (score, parts, 30 days charted). The infrastructure page shows the quarantine
reason beside the IP as well."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from reputation import scoring
from reputation.charts import score_chart
from reputation.services import blocklists, history, scores
from tenants.permissions import Area
from tenants.web import area_required, principal_of


@area_required(Area.INFRASTRUCTURE)
def listings(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    rows = blocklists.tenant_listings(principal.tenant, domains=principal.allows(Area.DOMAINS))
    urls = blocklists.removal_urls()
    items = [(r, urls.get(r.zone, "")) for r in rows]
    return render(request, "reputation/listings.html", {"items": items})


@area_required(Area.WARMUP)
def overview(request: HttpRequest) -> HttpResponse:
    """Worst first: what each section shows follows the principal's areas (mailboxes, domains,
    infrastructure for IPs and their listings)."""
    principal = principal_of(request)
    see_ips = principal.allows(Area.INFRASTRUCTURE)
    found = scores.worst_first(principal.tenant, ips=see_ips)
    mailboxes = found.mailboxes if principal.allows(Area.MAILBOXES) else []
    rows = blocklists.tenant_listings(
        principal.tenant, ips=see_ips, domains=principal.allows(Area.DOMAINS)
    )
    urls = blocklists.removal_urls()
    return render(
        request,
        "reputation/overview.html",
        {
            "mailboxes": [(row, scoring.allowance_share(row.score)) for row in mailboxes],
            "domains": found.domains if principal.allows(Area.DOMAINS) else [],
            "ips": found.ips,
            "show": {
                "mailboxes": principal.allows(Area.MAILBOXES),
                "domains": principal.allows(Area.DOMAINS),
                "ips": see_ips,
            },
            "listings": [(r, urls.get(r.zone, "")) for r in rows],
            "full_score": scoring.FULL_SCORE,
        },
    )


def _history_page(request: HttpRequest, found: history.SubjectHistory) -> HttpResponse:
    rows = found.rows
    chart = score_chart(rows, title=f"{found.name}: reputation, {history.DAYS} days")
    return render(
        request,
        "reputation/history.html",
        {
            "found": found,
            "latest": found.latest,
            "history": rows,
            "chart": chart if len(rows) > 1 else "",
        },
    )


@area_required(Area.DOMAINS)
def domain_history(request: HttpRequest, domain_id: int) -> HttpResponse:
    """One sending domain's score, its parts and its 30 days' history (chart and table)."""
    return _history_page(request, history.domain_history(principal_of(request), domain_id))


@area_required(Area.INFRASTRUCTURE)
def ip_history(request: HttpRequest, ip_id: int) -> HttpResponse:
    """One IP's score, its parts and its 30 days' history (chart and table)."""
    return _history_page(request, history.ip_history(principal_of(request), ip_id))
