"""Staff page: cost against revenue per tenant for a month (/admin/billing/payment/margins/),
the same figures as `manage.py billing margins` (billing.services.margins), and the plans'
allocation check."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing.services import margins
from penguinmails.errors import ValidationFailed


def margins_view(request: HttpRequest) -> HttpResponse:
    month = request.GET.get("month", "").strip()
    error = ""
    try:
        report = margins.margins(month or None)
    except ValidationFailed as exc:
        error = exc.message
        report = margins.margins(None)
    status = 400 if error else 200
    context = {
        **admin.site.each_context(request),
        "title": f"Margins {report.month}",
        "report": report,
        "concerns": {c.row.tenant: c for c in margins.concerns(report)},
        "floor": margins.floor(),
        "plans": margins.check_plans(),
        "error": error,
        "previous": margins.previous_month(),
    }
    return TemplateResponse(request, "admin/billing/margins.html", context, status=status)
