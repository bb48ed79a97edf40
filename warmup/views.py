"""Dashboard: the warm-up page of a mailbox (status, day N, today's sends, inbox and spam
placement over 30 days as a chart, the plan's settings; panels other apps add, such as the
reputation score) and its settings form. Thin: warmup.services.plan_settings."""

from __future__ import annotations

import re

import pygal
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST
from pygal.style import Style

from deliverability.services.allowance import allowance_for
from penguinmails.errors import ValidationFailed
from tenants.permissions import Area, Level
from tenants.web import area_required, principal_of
from warmup.faces import mailbox_panels
from warmup.services import plan_settings
from warmup.services.plan_settings import DayPlacement

_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    font_family="system-ui, sans-serif",
    colors=("#12b76a", "#f04438"),
)


def placement_chart(series: list[DayPlacement], *, title: str) -> SafeString:
    """Stacked bars of inbox and spam placements per day, inline SVG drawn by pygal (as the
    campaign pages do); the figures are in the table beside it."""
    chart = pygal.StackedBar(
        width=900, height=240, style=_STYLE, js=[], disable_xml_declaration=True,
        x_label_rotation=0, show_minor_x_labels=False,
        x_labels_major_every=max(1, len(series) // 6), legend_at_bottom=True, margin=8,
    )  # fmt: skip
    chart.x_labels = [d.day.strftime("%b %d") for d in series]
    chart.add("Inbox", [d.inbox for d in series])
    chart.add("Spam", [d.spam for d in series])
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    # pygal's output holds only our numbers, dates and fixed series names; the title is escaped.
    return mark_safe(  # noqa: S308
        svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1)
    )


def _context(request: HttpRequest, mailbox_id: int) -> dict[str, object]:
    principal = principal_of(request)
    mailbox = plan_settings.access_warmup(principal, mailbox_id)
    series = plan_settings.placement_series(mailbox)
    return {
        "mailbox": mailbox,
        "summary": plan_settings.summary(mailbox),
        # What campaigns may send from it today, and why (warm-up age, reputation).
        "room": allowance_for(principal.tenant, [mailbox.pk]).mailboxes.get(mailbox.pk),
        "series": [d for d in series if d.inbox or d.spam],
        "chart": placement_chart(series, title=f"{mailbox.address}: warm-up placement, 30 days")
        if any(d.inbox or d.spam for d in series)
        else "",
        "panels": mailbox_panels(principal, mailbox),
        "can_write": principal.allows(Area.WARMUP, Level.WRITE),
        "fields": plan_settings.FIELDS,
    }


@area_required(Area.WARMUP)
def mailbox_warmup(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    return render(request, "warmup/mailbox.html", _context(request, mailbox_id))


@require_POST
@area_required(Area.WARMUP, level=Level.WRITE)
def mailbox_warmup_update(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    principal = principal_of(request)
    mailbox = plan_settings.access_warmup(principal, mailbox_id, write=True)
    data = {k: v for k, v in request.POST.items() if k in (*plan_settings.FIELDS, "enabled")}
    try:
        plan_settings.update_warmup(principal, mailbox, data)
    except ValidationFailed as exc:
        context = _context(request, mailbox_id)
        context["errors"] = exc.fields
        return render(request, "warmup/mailbox.html", context, status=400)
    messages.success(request, "Warm-up settings saved.")
    return redirect("warmup:mailbox", mailbox_id=mailbox.pk)
