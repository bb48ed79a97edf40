"""Leads pages (thin: every write calls campaigns.services.leads).

/campaigns/leads/ lists and filters leads, exports them as CSV and leads to imports: upload a
file, confirm how its columns map, then watch the counts move (htmx polls the progress panel)
and download the rows that were not imported.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns.imports import CUSTOM_PREFIX, MAPPABLE_FIELDS, custom_key
from campaigns.models import DuplicatePolicy, LeadImport, LeadList, LeadStatus
from campaigns.services import leads as service
from penguinmails.errors import DomainError, ValidationFailed
from tenants.permissions import Area, Level
from tenants.web import area_required, principal_of

PAGE_SIZE = 50


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8; comma, semicolon or tab separated.")
    duplicates = forms.ChoiceField(
        label="When a lead already exists",
        choices=DuplicatePolicy.choices,
        initial=DuplicatePolicy.UPDATE,
    )
    list_name = forms.CharField(label="Add to list (optional)", required=False, max_length=200)
    check_mx = forms.BooleanField(label="Check each domain's MX records", required=False)


class LeadForm(forms.Form):
    first_name = forms.CharField(required=False, max_length=200)
    last_name = forms.CharField(required=False, max_length=200)
    company = forms.CharField(required=False, max_length=200)
    title = forms.CharField(required=False, max_length=200)
    website = forms.CharField(required=False, max_length=500)
    phone = forms.CharField(required=False, max_length=64)
    timezone = forms.CharField(
        required=False, max_length=64, help_text="IANA name, such as America/New_York."
    )
    tags = forms.CharField(required=False, help_text="Separated by commas.")
    status = forms.ChoiceField(choices=LeadStatus.choices)


def _filters(request: HttpRequest) -> dict[str, str]:
    return {k: request.GET.get(k, "").strip() for k in ("q", "status", "tag", "list")}


@area_required(Area.LEADS)
def leads(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    chosen = _filters(request)
    found = service.list_leads(
        principal,
        q=chosen["q"],
        status=chosen["status"],
        tag=chosen["tag"],
        list_id=chosen["list"] or None,
    ).prefetch_related("lists")
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in chosen.items() if v)
    return render(
        request,
        "leads/list.html",
        {
            "page": page,
            "filters": chosen,
            "query": query,
            "statuses": LeadStatus.choices,
            "tags": service.all_tags(principal),
            "lists": list(LeadList.objects.all()),
            "imports": list(LeadImport.objects.all()[:5]),
            "can_write": principal.allows(Area.LEADS, Level.WRITE),
        },
    )


@area_required(Area.LEADS)
def export(request: HttpRequest) -> StreamingHttpResponse:
    chosen = _filters(request)
    found = service.list_leads(
        principal_of(request),
        q=chosen["q"],
        status=chosen["status"],
        tag=chosen["tag"],
        list_id=chosen["list"] or None,
    )
    response = StreamingHttpResponse(service.export_csv(found), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="leads.csv"'
    return response


@area_required(Area.LEADS)
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    principal = principal_of(request)
    lead = service.access_lead(principal, lead_id)
    initial = {f: getattr(lead, f) for f in LeadForm.base_fields if f != "tags"}
    form = LeadForm(initial={**initial, "tags": ", ".join(lead.tags)})
    status = 200
    if request.method == "POST":
        form = LeadForm(request.POST)
        if form.is_valid():
            try:
                service.update_lead(principal, lead, changes=dict(form.cleaned_data))
            except ValidationFailed as exc:
                for name, errors in exc.fields.items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            else:
                messages.success(request, f"{lead.email} saved.")
                return redirect("campaigns:lead_detail", lead_id=lead.pk)
        status = 400
    return render(
        request,
        "leads/detail.html",
        {
            "lead": lead,
            "form": form,
            "lists": list(lead.lists.all()),
            "can_write": principal.allows(Area.LEADS, Level.WRITE),
        },
        status=status,
    )


@require_POST
@area_required(Area.LEADS, level=Level.WRITE)
def lead_delete(request: HttpRequest, lead_id: int) -> HttpResponse:
    principal = principal_of(request)
    lead = service.access_lead(principal, lead_id)
    service.delete_lead(principal, lead)
    messages.success(request, f"{lead.email} deleted.")
    return redirect("campaigns:leads")


@require_POST
@area_required(Area.LEADS, level=Level.WRITE)
def list_create(request: HttpRequest) -> HttpResponse:
    try:
        created = service.create_list(
            principal_of(request),
            name=request.POST.get("name", ""),
            description=request.POST.get("description", ""),
        )
    except DomainError as exc:
        if exc.status_code not in (400, 409):
            raise
        messages.error(request, exc.message)
    else:
        messages.success(request, f"List {created.name} created.")
    return redirect("campaigns:leads")


@area_required(Area.LEADS, level=Level.WRITE)
def import_new(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = ImportForm()
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                created = service.create_import(
                    principal,
                    upload=upload,
                    filename=upload.name,
                    duplicates=form.cleaned_data["duplicates"],
                    list_name=form.cleaned_data["list_name"] or None,
                    check_mx=form.cleaned_data["check_mx"],
                    start=False,  # the mapping is confirmed on the next page
                )
            except ValidationFailed as exc:
                form.add_error("file", exc.message)
            else:
                return redirect("campaigns:import_detail", import_id=created.pk)
        return render(request, "leads/import_new.html", {"form": form}, status=400)
    return render(request, "leads/import_new.html", {"form": form})


def _mapping_rows(lead_import: LeadImport) -> list[dict[str, Any]]:
    rows = []
    for header in lead_import.headers:
        custom = CUSTOM_PREFIX + custom_key(header)
        choices = [("", "Ignore")] + [(f, f) for f in MAPPABLE_FIELDS] + [(custom, f"{custom}")]
        rows.append(
            {"header": header, "choices": choices, "chosen": lead_import.mapping.get(header, "")}
        )
    return rows


def _import_context(request: HttpRequest, lead_import: LeadImport) -> dict[str, Any]:
    principal = principal_of(request)
    return {
        "imp": lead_import,
        "mapping_rows": _mapping_rows(lead_import),
        "can_write": principal.allows(Area.LEADS, Level.WRITE),
        "awaiting_mapping": lead_import.job_id is None,
        "polling": lead_import.job_id is not None and not lead_import.finished,
        "problems": list(lead_import.errors.all()[:20]),
    }


@area_required(Area.LEADS)
def import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    found = service.access_import(principal_of(request), import_id)
    return render(request, "leads/import_detail.html", _import_context(request, found))


@area_required(Area.LEADS)
def import_progress(request: HttpRequest, import_id: int) -> HttpResponse:
    """The progress panel alone, for htmx polling while the import runs."""
    found = service.access_import(principal_of(request), import_id)
    return render(request, "leads/_progress.html", _import_context(request, found))


@require_POST
@area_required(Area.LEADS, level=Level.WRITE)
def import_start(request: HttpRequest, import_id: int) -> HttpResponse:
    principal = principal_of(request)
    found = service.access_import(principal, import_id)
    mapping = {h: request.POST.get(f"map-{i}", "") for i, h in enumerate(found.headers)}
    try:
        service.start_import(principal, found, mapping=mapping)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
        context = _import_context(request, found)
        return render(request, "leads/import_detail.html", context, status=400)
    return redirect("campaigns:import_detail", import_id=found.pk)


@area_required(Area.LEADS)
def import_errors(request: HttpRequest, import_id: int) -> StreamingHttpResponse:
    principal = principal_of(request)
    found = service.access_import(principal, import_id)
    response = StreamingHttpResponse(
        service.import_errors_csv(principal, found), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{found.pk}-errors.csv"'
    return response
