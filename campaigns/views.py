"""Campaigns, leads and templates pages. The features come in later issues; until then each page
says so plainly (and still enforces its area's permission)."""

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


@area_required(Area.LEADS)
def leads(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Leads",
        summary="Leads are not built yet.",
        will_hold=[
            "Lead lists imported from CSV or added through the API",
            "Custom fields used as template variables",
            "Each lead's status across campaigns, and the suppression list",
        ],
    )


@area_required(Area.TEMPLATES)
def templates(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Templates",
        summary="Templates are not built yet.",
        will_hold=[
            "Reusable email templates with variables and spintax",
            "A preview with a sample lead",
        ],
    )
