"""Templates pages: list, editor with live preview (htmx), duplicate, delete and test send. Every
write calls a service in campaigns.services.templates."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns import rendering
from campaigns.models import EmailTemplate
from campaigns.services import templates as svc
from penguinmails.errors import ValidationFailed
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.web import area_required, principal_of


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=998, strip=False)
    html_body = forms.CharField(
        label="HTML", required=False, strip=False, widget=forms.Textarea(attrs={"rows": 14})
    )
    text_body = forms.CharField(
        label="Text (optional)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Left empty, it is generated from the HTML (links as “text (url)”).",
    )


SAMPLE_FIELDS = list(rendering.LEAD_FIELDS)


def _sample_from(data: dict[str, str] | object) -> dict[str, object]:
    """The preview's sample lead from the form's `sample_*` inputs (custom as `k=v` lines)."""
    get = getattr(data, "get", lambda key, default=None: default)
    overrides: dict[str, object] = {}
    for name in SAMPLE_FIELDS:
        value = get(f"sample_{name}")
        if value is not None:
            overrides[name] = str(value)[:500]
    custom: dict[str, str] = {}
    for line in str(get("sample_custom") or "").splitlines()[:50]:
        key, eq, value = line.partition("=")
        if eq and key.strip():
            custom[key.strip()] = value.strip()[:500]
    overrides["custom"] = custom
    return svc.sample_lead(overrides)


def _editor_context(
    principal: Principal, form: TemplateForm, template: EmailTemplate | None
) -> dict[str, object]:
    return {
        "form": form,
        "template": template,
        "can_write": principal.allows(Area.TEMPLATES, Level.WRITE),
        "sample_fields": [(name, svc.SAMPLE_LEAD.get(name, "")) for name in SAMPLE_FIELDS],
        "lead_fields": rendering.LEAD_FIELDS,
    }


def _apply_errors(form: TemplateForm, exc: ValidationFailed) -> None:
    for field, errors in (exc.fields or {"__all__": [exc.message]}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


@area_required(Area.TEMPLATES)
def template_list(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    return render(
        request,
        "campaign_templates/list.html",
        {
            "templates": list(svc.list_templates(principal)),
            "can_write": principal.allows(Area.TEMPLATES, Level.WRITE),
        },
    )


@area_required(Area.TEMPLATES, level=Level.WRITE)
def template_new(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = TemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = svc.create_template(principal, **form.cleaned_data)
        except ValidationFailed as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect("campaigns:template_edit", template_id=template.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "campaign_templates/edit.html",
        _editor_context(principal, form, None),
        status=status,
    )


@area_required(Area.TEMPLATES)
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    principal = principal_of(request)
    template = svc.access_template(principal, template_id)
    if request.method == "POST":
        # Writing needs write access: a viewer gets the editor read-only and a 403 on save.
        require(principal, Area.TEMPLATES, Level.WRITE)
        form = TemplateForm(request.POST)
        if form.is_valid():
            try:
                svc.update_template(principal, template, **form.cleaned_data)
            except ValidationFailed as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Template “{form.cleaned_data['name']}” saved.")
                return redirect("campaigns:template_edit", template_id=template.pk)
        return render(
            request,
            "campaign_templates/edit.html",
            _editor_context(principal, form, template),
            status=400,
        )
    form = TemplateForm(
        initial={
            "name": template.name,
            "subject": template.subject,
            "html_body": template.html_body,
            "text_body": "" if template.text_generated else template.text_body,
        }
    )
    return render(
        request, "campaign_templates/edit.html", _editor_context(principal, form, template)
    )


@require_POST
@area_required(Area.TEMPLATES)
def template_preview(request: HttpRequest) -> HttpResponse:
    """The preview pane (htmx): the editor's current content rendered for the sample lead."""
    principal = principal_of(request)
    data = request.POST
    context: dict[str, object] = {}
    try:
        context["rendered"] = svc.preview(
            principal,
            subject=data.get("subject", ""),
            html_body=data.get("html_body", ""),
            text_body=data.get("text_body", ""),
            lead=_sample_from(data),
        )
    except ValidationFailed as exc:
        context["errors"] = exc.fields
    return render(request, "campaign_templates/_preview.html", context)


@require_POST
@area_required(Area.TEMPLATES, level=Level.WRITE)
def template_duplicate(request: HttpRequest, template_id: int) -> HttpResponse:
    principal = principal_of(request)
    copy = svc.duplicate_template(principal, svc.access_template(principal, template_id))
    messages.success(request, f"Duplicated as “{copy.name}”.")
    return redirect("campaigns:template_edit", template_id=copy.pk)


@require_POST
@area_required(Area.TEMPLATES, level=Level.WRITE)
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    principal = principal_of(request)
    template = svc.access_template(principal, template_id)
    svc.delete_template(principal, template)
    messages.success(request, f"Template “{template.name}” deleted.")
    return redirect("campaigns:templates")


@require_POST
@area_required(Area.TEMPLATES, level=Level.WRITE)
def template_send_test(request: HttpRequest, template_id: int) -> HttpResponse:
    principal = principal_of(request)
    template = svc.access_template(principal, template_id)
    try:
        svc.send_test(principal, template, to=request.POST.get("to", ""))
    except ValidationFailed as exc:
        messages.error(request, f"Test not sent: {exc.message}")
        return redirect("campaigns:template_edit", template_id=template.pk)
    messages.success(
        request, f"Test sent to {request.POST.get('to', '').strip()} with the sample lead's values."
    )
    return redirect("campaigns:template_edit", template_id=template.pk)
