"""Mailboxes, sending domains and warm-up pages. The features come in later issues; until then
each page says so plainly (and still enforces its area's permission)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from penguinmails.web import area_required, not_built_page
from tenants.permissions import Area


@area_required(Area.MAILBOXES)
def mailboxes(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Mailboxes",
        summary="Mailboxes are not built yet.",
        will_hold=[
            "The sending mailboxes on your domains, with their daily limits",
            "Connection status of each mailbox (SMTP and IMAP)",
            "Bounces, complaints and replies received per mailbox",
        ],
    )


@area_required(Area.DOMAINS)
def domains(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Domains",
        summary="Sending domains are not built yet.",
        will_hold=[
            "Your sending domains and the SPF, DKIM and DMARC records to publish",
            "Verification status of each record",
            "Blacklist checks and reputation per domain",
        ],
    )


@area_required(Area.WARMUP)
def warmup(request: HttpRequest) -> HttpResponse:
    return not_built_page(
        request,
        title="Warm-up",
        summary="Warm-up is not built yet.",
        will_hold=[
            "Each mailbox's warm-up plan and its daily volume ramp",
            "Inbox placement and reputation while warming up",
        ],
    )
