"""Dashboard plumbing that knows no tenant, shared by every app's views.

- `render_domain_error` renders a DomainError as an HTML page with the error's status (403, 404,
  409, 423 for a suspended tenant...); tenants.web.DashboardMiddleware calls it.
- `perform` runs a dashboard action and turns its outcome into a message; `client_ip` is the
  address brute-force budgets count against.

The tenant-scoped parts (the sidebar, `area_required`, `principal_of`) are in tenants.web: they
depend on tenants' roles and areas, and the core imports no app.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from penguinmails.errors import Conflict, DomainError


def render_domain_error(request: HttpRequest, error: DomainError) -> HttpResponse:
    titles = {
        403: "Not allowed",
        404: "Not found",
        409: "That cannot be done now",
        410: "No longer valid",
        423: "Workspace suspended",
    }
    return render(
        request,
        "errors/domain_error.html",
        {
            "layout": layout_for(request),
            "title": titles.get(error.status_code, "Request refused"),
            "error": error,
            "status_code": error.status_code,
        },
        status=error.status_code,
    )


def layout_for(request: HttpRequest) -> str:
    """Dashboard layout on a tenant host, the public one elsewhere."""
    return "base.html" if getattr(request, "tenant", None) is not None else "public_base.html"


def client_ip(request: HttpRequest) -> str:
    """The address brute-force budgets are counted against.

    REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it,
    and trusting it would let a guesser pick a fresh address for every attempt.
    """
    return request.META.get("REMOTE_ADDR") or "unknown"


def perform(
    request: HttpRequest,
    action: Callable[[], object],
    *,
    success: str,
    refused: tuple[type[DomainError], ...] = (Conflict,),
) -> bool:
    """Run a dashboard action: a refusal the user can act on (`refused`) becomes an error
    message, anything else a success message. Other domain errors go to the error pages."""
    try:
        action()
    except refused as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, success)
    return True
