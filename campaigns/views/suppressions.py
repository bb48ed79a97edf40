"""The suppression list page: addresses and domains never emailed, searched and filtered by
reason; people who may write leads add entries and lift them (a hard bounce or a complaint
only after ticking that the address works now). Thin: campaigns.services.lists does the work."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns.models import SuppressionReason
from campaigns.services import lists
from penguinmails.errors import Conflict, ValidationFailed
from penguinmails.web import perform
from tenants.permissions import Area, Level
from tenants.web import area_required, principal_of

PAGE_SIZE = 100


@area_required(Area.LEADS)
def suppressions(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    q, reason = request.GET.get("q", "").strip(), request.GET.get("reason", "")
    if reason not in SuppressionReason.values:
        reason = ""
    rows = lists.list_suppressions(principal, q=q, reason=reason)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "leads/suppressions.html",
        {
            "page": page,
            "filters": {"q": q, "reason": reason},
            "reasons": SuppressionReason.choices,
            "can_write": principal.allows(Area.LEADS, Level.WRITE),
        },
    )


@require_POST
@area_required(Area.LEADS, level=Level.WRITE)
def suppression_add(request: HttpRequest) -> HttpResponse:
    values = [v.strip() for v in request.POST.get("values", "").replace(",", "\n").splitlines()]
    values = [v for v in values if v]
    perform(
        request,
        lambda: lists.add_suppressions(principal_of(request), values),
        success=f"Suppressed {len(values)} address{'es' if len(values) != 1 else ''} or domains.",
        refused=(ValidationFailed,),
    )
    return redirect("campaigns:suppressions")


@require_POST
@area_required(Area.LEADS, level=Level.WRITE)
def suppression_lift(request: HttpRequest, suppression_id: int) -> HttpResponse:
    principal = principal_of(request)
    found = lists.access_suppression(principal, suppression_id)
    perform(
        request,
        lambda: lists.remove_suppression(
            principal, found, force=request.POST.get("force") == "yes"
        ),
        success=f"{found.value} may be emailed again.",
        refused=(Conflict,),
    )
    return redirect("campaigns:suppressions")
