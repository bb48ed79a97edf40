"""The unified inbox page (docs/inbound.md, "Unified inbox"): replies across mailboxes and
campaigns, newest first, filtered by campaign, mailbox, label and unread; a thread view with the
message we sent, the reply, the answers sent and a reply box (writers only: labelling, marking
and replying need write access to campaigns). The API's /api/v1/inbox shows the same rows."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns.models import Campaign, InboxLabel
from campaigns.services import inbox as svc
from deliverability.models import Mailbox
from penguinmails.errors import Conflict, ValidationFailed
from tenants.permissions import Area, Level
from tenants.web import area_required, principal_of

PAGE_SIZE = 50


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@area_required(Area.CAMPAIGNS)
def inbox(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    filters = {
        "campaign": _int(request.GET.get("campaign")),
        "mailbox": _int(request.GET.get("mailbox")),
        "label": request.GET.get("label", "")
        if request.GET.get("label") in InboxLabel.values
        else "",
        "unread": True if request.GET.get("unread") == "1" else None,
    }
    rows = svc.list_inbox(principal, **filters)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "inbox/index.html",
        {
            "page": page,
            "items": svc.hydrate(list(page.object_list)),
            "filters": filters,
            "campaigns": Campaign.objects.order_by("name").only("pk", "name"),
            "mailboxes": Mailbox.objects.order_by("address").only("pk", "address"),
            "labels": InboxLabel.choices,
            "unread": svc.unread_total(),
        },
    )


@area_required(Area.CAMPAIGNS)
def thread(request: HttpRequest, inbound_id: int) -> HttpResponse:
    principal = principal_of(request)
    item = svc.access_inbox_item(principal, inbound_id)
    can_write = principal.allows(Area.CAMPAIGNS, Level.WRITE)
    if can_write and not item.read:  # opening a reply reads it, as in any mail client
        svc.mark_read(principal, item)
    return render(
        request,
        "inbox/thread.html",
        {"item": item, "labels": InboxLabel.choices, "can_write": can_write},
    )


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def label(request: HttpRequest, inbound_id: int) -> HttpResponse:
    principal = principal_of(request)
    item = svc.access_inbox_item(principal, inbound_id)
    try:
        svc.label_reply(principal, item, label=request.POST.get("label", ""))
    except ValidationFailed as exc:
        messages.error(request, exc.message)
    return redirect("inbox:thread", inbound_id=item.id)


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def mark(request: HttpRequest, inbound_id: int) -> HttpResponse:
    principal = principal_of(request)
    item = svc.access_inbox_item(principal, inbound_id)
    svc.mark_read(principal, item, read=request.POST.get("read", "1") == "1")
    return redirect("inbox:index")


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def reply(request: HttpRequest, inbound_id: int) -> HttpResponse:
    principal = principal_of(request)
    item = svc.access_inbox_item(principal, inbound_id)
    try:
        answer = svc.send_reply(principal, item, body=request.POST.get("body", ""))
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Reply sent to {answer.to_email}.")
    return redirect("inbox:thread", inbound_id=item.id)
