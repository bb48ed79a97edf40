"""A campaign's messages page: every message with its status, the check that held or skipped
it and why, the server's reply, and its opens and clicks; filtered by status and step, newest
first (the API's /api/v1/messages shows the same rows). Unknown messages are counted at the top
and carry their resolution: resend with the same Message-ID, or accept as sent (writers only)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns.models import MessageStatus
from campaigns.sending.resolution import (
    RESENDABLE_CAMPAIGN,
    Resolution,
    access_message,
    resolve_unknown_message,
)
from campaigns.services import campaigns as svc
from penguinmails.errors import IllegalTransition, ValidationFailed
from tenants.permissions import Area, Level
from tenants.web import area_required, principal_of

PAGE_SIZE = 100
DONE = {
    Resolution.RESEND: "Message to {to} queued again with its Message-ID; it goes out shortly.",
    Resolution.ACCEPT: "Message to {to} accepted as sent.",
}


@area_required(Area.CAMPAIGNS)
def campaign_messages(request: HttpRequest, campaign_id: int) -> HttpResponse:
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    status = request.GET.get("status", "")
    if status not in MessageStatus.values:
        status = ""
    steps = list(campaign.steps.order_by("order"))
    step = request.GET.get("step", "")
    if step not in {str(s.pk) for s in steps}:
        step = ""
    rows = campaign.messages.select_related("step", "mailbox").order_by("-created_at", "-id")
    if status:
        rows = rows.filter(status=status)
    if step:
        rows = rows.filter(step_id=int(step))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns_dash/messages.html",
        {
            "campaign": campaign,
            "page": page,
            "steps": steps,
            "statuses": MessageStatus.choices,
            "filters": {"status": status, "step": step},
            "unknown": campaign.messages.filter(status=MessageStatus.UNKNOWN).count(),
            "can_resolve": principal.allows(Area.CAMPAIGNS, Level.WRITE),
            "can_resend": campaign.status in RESENDABLE_CAMPAIGN,
        },
    )


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def message_resolve(request: HttpRequest, campaign_id: int, message_id: int) -> HttpResponse:
    """Resend or accept one unknown message; a refusal is shown on the page it came from."""
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    message = access_message(principal, message_id, campaign=campaign)
    action = request.POST.get("action", "")
    try:
        done = resolve_unknown_message(principal, message, action=action, via="dashboard")
    except (IllegalTransition, ValidationFailed) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, DONE[Resolution(action)].format(to=done.to_email))
    return redirect("campaigns:campaign_messages", campaign_id=campaign.pk)
