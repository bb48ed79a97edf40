"""Sending domain pages (every write calls a service in deliverability.services.domains); the
mailbox pages are in views/mailboxes.py; a mailbox's warm-up page is the warmup app's."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.views.decorators.http import require_POST

from deliverability.models import DomainStatus, ProtectedKind, SendingDomain
from deliverability.notices import domain_notices
from deliverability.services import protection, protection_state, sender_stats
from deliverability.services.domains import (
    access_domain,
    add_domain,
    list_domains,
    remove_domain,
    verify_domain,
)
from penguinmails import states
from penguinmails.errors import ValidationFailed
from penguinmails.models import Job
from tenants.permissions import Area, Level
from tenants.services.access import Principal
from tenants.web import area_required, principal_of


# --- Sending domains -----------------------------------------------------------------------------
class DomainForm(forms.Form):
    name = forms.CharField(
        label="Domain", max_length=253, widget=forms.TextInput(attrs={"placeholder": "example.com"})
    )
    tracking_host = forms.CharField(
        label="Tracking host (optional)",
        required=False,
        max_length=253,
        # Django renders help_text as HTML: the placeholder is escaped, or `<domain>` vanishes.
        help_text=escape("Defaults to track.<domain>."),
    )
    dmarc_rua = forms.CharField(
        label="DMARC report address (optional)",
        required=False,
        max_length=254,
        help_text="Defaults to the platform's report mailbox.",
    )


def _list_context(principal: Principal, form: DomainForm | None = None) -> dict[str, object]:
    return {
        "domains": list(list_domains(principal)),
        # Other apps' word on the tenant's domains (a domain blocklist listing).
        "notices": domain_notices(principal.tenant),
        "can_write": principal.allows(Area.DOMAINS, Level.WRITE),
        "form": form or DomainForm(),
    }


@area_required(Area.DOMAINS)
def domains(request: HttpRequest) -> HttpResponse:
    return render(request, "domains/list.html", _list_context(principal_of(request)))


@require_POST
@area_required(Area.DOMAINS, level=Level.WRITE)
def domain_add(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = DomainForm(request.POST)
    if form.is_valid():
        try:
            domain = add_domain(
                principal,
                name=form.cleaned_data["name"],
                tracking_host=form.cleaned_data["tracking_host"] or None,
                dmarc_rua=form.cleaned_data["dmarc_rua"] or None,
            )
        except ValidationFailed as exc:
            for field, errors in (exc.fields or {"name": [exc.message]}).items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, f"{domain.name} added: publish its records, then verify.")
            return redirect("deliverability:domain_detail", domain_id=domain.pk)
    return render(request, "domains/list.html", _list_context(principal, form), status=400)


def _detail_context(principal: Principal, domain: SendingDomain) -> dict[str, object]:
    job = Job.objects.filter(pk=domain.check_job_id).first() if domain.check_job_id else None
    return {
        "domain": domain,
        "records": list(domain.records.all()),
        "transitions": states.history(domain, limit=10, newest_first=True),
        "can_write": principal.allows(Area.DOMAINS, Level.WRITE),
        "job": job,
        # Poll while a check is waiting or running; stop once it has settled.
        "polling": domain.status == DomainStatus.VERIFYING,
        # Automatic protection (docs/inbound.md): the last 30 days' rates and any flag or hold.
        "rates": sender_stats.sender_figures("domain", days=30, ids=[domain.pk]).get(domain.pk),
        "protection": protection_state.states_for(ProtectedKind.DOMAIN, [domain.pk]).get(domain.pk),
    }


@area_required(Area.DOMAINS)
def domain_detail(request: HttpRequest, domain_id: int) -> HttpResponse:
    principal = principal_of(request)
    domain = access_domain(principal, domain_id)
    return render(request, "domains/detail.html", _detail_context(principal, domain))


@area_required(Area.DOMAINS)
def domain_status(request: HttpRequest, domain_id: int) -> HttpResponse:
    """The status and records panel alone, for htmx polling while a check runs."""
    principal = principal_of(request)
    domain = access_domain(principal, domain_id)
    return render(request, "domains/_status.html", _detail_context(principal, domain))


@require_POST
@area_required(Area.DOMAINS, level=Level.WRITE)
def domain_verify(request: HttpRequest, domain_id: int) -> HttpResponse:
    principal = principal_of(request)
    domain = access_domain(principal, domain_id)
    verify_domain(principal, domain)
    if request.htmx:  # type: ignore[attr-defined]
        domain.refresh_from_db()
        return render(request, "domains/_status.html", _detail_context(principal, domain))
    messages.success(request, f"Checking {domain.name}'s DNS records now.")
    return redirect("deliverability:domain_detail", domain_id=domain.pk)


@require_POST
@area_required(Area.DOMAINS, level=Level.WRITE)
def domain_remove(request: HttpRequest, domain_id: int) -> HttpResponse:
    principal = principal_of(request)
    domain = access_domain(principal, domain_id)
    remove_domain(principal, domain)
    messages.success(request, f"{domain.name} removed.")
    return redirect("deliverability:domains")


@require_POST
@area_required(Area.DOMAINS, level=Level.WRITE)
def domain_resume(request: HttpRequest, domain_id: int) -> HttpResponse:
    """Lift automatic protection's hold (recorded; earlier figures acknowledged)."""
    principal = principal_of(request)
    domain = protection.resume_domain(principal, access_domain(principal, domain_id))
    messages.success(request, f"Sending from {domain.name} resumed.")
    return redirect("deliverability:domain_detail", domain_id=domain.pk)
