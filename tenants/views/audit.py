"""The workspace's audit log page: who did what, including platform staff (docs/audit.md)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from tenants.models import AuditSource
from tenants.permissions import Area
from tenants.services.access import Principal
from tenants.services.audit import (
    LogFilter,
    log_actions,
    log_actors,
    require_log_access,
    tenant_log,
)
from tenants.web import area_required, principal_of

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    actor = forms.ChoiceField(required=False)
    action = forms.CharField(
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"list": "audit-actions"}),
        help_text='An action, or a prefix such as "campaign."',
    )
    source = forms.ChoiceField(
        required=False, choices=[("", "Everyone"), *AuditSource.choices], label="By"
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, actors: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actor = self.fields["actor"]
        assert isinstance(actor, forms.ChoiceField)
        actor.choices = [("", "Anyone"), *((email, email) for email in actors)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The last day comes after the first.")
        return data

    def filters(self) -> LogFilter:
        data = self.cleaned_data
        return LogFilter(
            actor=data.get("actor") or "",
            action=(data.get("action") or "").strip(),
            source=data.get("source") or "",
            since=data.get("since"),
            until=data.get("until"),
        )


def _context(principal: Principal, form: AuditFilterForm, request: HttpRequest) -> dict[str, Any]:
    filters = form.filters() if form.is_bound and form.is_valid() else LogFilter()
    page = Paginator(tenant_log(principal, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()  # the filters, kept in the previous/next links
    query.pop("page", None)
    return {
        "form": form,
        "page": page,
        "actions": log_actions(principal),
        "query": query.urlencode(),
    }


@require_safe
@area_required(Area.TEAM)
def audit_log(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    require_log_access(principal)  # 403 page for members and viewers
    form = AuditFilterForm(request.GET or None, actors=log_actors(principal))
    status = 400 if form.is_bound and not form.is_valid() else 200
    context = _context(principal, form, request)
    return render(request, "dashboard/audit.html", context, status=status)
