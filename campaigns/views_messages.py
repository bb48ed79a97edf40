"""A campaign's messages page: every message with its status, the check that held or skipped
it and why, the server's reply, and its opens and clicks; filtered by status and step, newest
first. Read-only (the API's /api/v1/messages shows the same rows)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from campaigns.models import MessageStatus
from campaigns.services import campaigns as svc
from penguinmails.web import area_required, principal_of
from tenants.permissions import Area

PAGE_SIZE = 100


@area_required(Area.CAMPAIGNS)
def campaign_messages(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = svc.access_campaign(principal_of(request), campaign_id)
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
        },
    )
