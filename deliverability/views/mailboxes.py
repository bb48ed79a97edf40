"""Mailbox pages: the list with status, limit and health; create on our server; connect from
outside (the failing step shown on error); test, pause/resume, limit, delete. Thin: every write
calls deliverability.services.mailboxes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deliverability.models import MailboxKind, ProtectedKind, Security, SendingDomain
from deliverability.services import mailboxes as service
from deliverability.services import protection_state, sender_stats
from deliverability.services.allowance import allowance_for
from deliverability.services.mailbox_probe import vet_servers
from infrastructure.services.mailservers import mail_server_for, uses_shared_servers
from penguinmails import states
from penguinmails.crypto import SecretUnavailable
from penguinmails.errors import DomainError, ValidationFailed
from tenants.permissions import Area, Level
from tenants.services.access import Principal
from tenants.web import area_required, principal_of

EXTERNAL = [(k.value, k.label) for k in MailboxKind if k != MailboxKind.HOSTED]


class CreateForm(forms.Form):
    local_part = forms.CharField(label="Address (before the @)", max_length=64)
    domain = forms.ChoiceField(label="Domain", choices=())
    display_name = forms.CharField(label="Display name", max_length=120, required=False)
    daily_limit = forms.IntegerField(
        label="Daily limit", min_value=1, max_value=service.MAX_DAILY_LIMIT, required=False
    )

    def __init__(self, *args: object, domains: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["domain"].choices = [(d, d) for d in domains]  # type: ignore[attr-defined]


class ConnectForm(forms.Form):
    address = forms.EmailField(label="Email address")
    kind = forms.ChoiceField(label="Provider", choices=EXTERNAL)
    display_name = forms.CharField(label="Display name", max_length=120, required=False)
    smtp_host = forms.CharField(label="SMTP host", max_length=253)
    smtp_port = forms.IntegerField(label="SMTP port", initial=587)
    smtp_security = forms.ChoiceField(
        label="SMTP security", choices=Security.choices, initial="starttls"
    )
    smtp_username = forms.CharField(label="SMTP username", required=False, max_length=254)
    smtp_password = forms.CharField(label="SMTP password", widget=forms.PasswordInput)
    imap_host = forms.CharField(label="IMAP host", max_length=253)
    imap_port = forms.IntegerField(label="IMAP port", initial=993)
    imap_security = forms.ChoiceField(label="IMAP security", choices=Security.choices)
    imap_username = forms.CharField(label="IMAP username", required=False, max_length=254)
    imap_password = forms.CharField(
        label="IMAP password (if different)", widget=forms.PasswordInput, required=False
    )
    daily_limit = forms.IntegerField(
        label="Daily limit", min_value=1, max_value=service.MAX_DAILY_LIMIT, required=False
    )

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        # The outbound guard, as the API applies it: refused before anything is contacted.
        refused = vet_servers(
            smtp_host=data.get("smtp_host", ""),
            smtp_port=data.get("smtp_port"),
            imap_host=data.get("imap_host", ""),
            imap_port=data.get("imap_port"),
        )
        for field, errors in refused.items():
            for error in errors:
                self.add_error(field, error)
        return data


def _percents(figures: sender_stats.SenderFigures | None) -> dict[str, str]:
    """Each rate as "1.25 %" ("-" when its base is 0)."""
    if figures is None:
        return {}
    rates = {
        "bounce": figures.bounce_rate,
        "complaint": figures.complaint_rate,
        "reply": figures.reply_rate,
    }
    return {k: "-" if v is None else f"{v * 100:.2f} %" for k, v in rates.items()}


def _context(
    principal: Principal,
    *,
    create_form: CreateForm | None = None,
    connect_form: ConnectForm | None = None,
    connect_report: object = None,
) -> dict[str, object]:
    domains = list(SendingDomain.objects.values_list("name", flat=True))
    mailboxes = list(service.list_mailboxes(principal))
    # What each may still send today: deliverability's allowance (its limit, the plan's), one
    # query for the page.
    allowance = allowance_for(principal.tenant, [m.pk for m in mailboxes])
    for mailbox in mailboxes:
        room = allowance.mailboxes.get(mailbox.pk)
        mailbox.sent_count = room.sent if room else 0  # type: ignore[attr-defined]
        mailbox.room_today = allowance.room(mailbox.pk)  # type: ignore[attr-defined]
        mailbox.room_note = room.note if room else ""  # type: ignore[attr-defined]
        mailbox.room_explanation = room.explanation if room else ""  # type: ignore[attr-defined]
    # Automatic protection (docs/inbound.md): the last 30 days' rates and any flag or hold, as
    # the API gives them; two queries for the page, not per row.
    ids = [m.pk for m in mailboxes]
    rates = sender_stats.sender_figures("mailbox", days=30, ids=ids) if ids else {}
    states = protection_state.states_for(ProtectedKind.MAILBOX, ids) if ids else {}
    for mailbox in mailboxes:
        figures = rates.get(mailbox.pk)
        mailbox.rates_30d = figures  # type: ignore[attr-defined]
        mailbox.rate_pct = _percents(figures)  # type: ignore[attr-defined]
        mailbox.protection = states.get(mailbox.pk)  # type: ignore[attr-defined]
    return {
        "mailboxes": mailboxes,
        "can_write": principal.allows(Area.MAILBOXES, Level.WRITE),
        # Its own server, or the shared one when the plan has no dedicated servers.
        "server": mail_server_for(principal.tenant),
        "shared_plan": uses_shared_servers(principal.tenant),
        "domains": domains,
        "create_form": create_form or CreateForm(domains=domains),
        "connect_form": connect_form or ConnectForm(),
        "connect_report": connect_report,
        "max_limit": service.MAX_DAILY_LIMIT,
    }


def _form_errors(form: forms.Form, exc: ValidationFailed) -> None:
    for field, errors in (exc.fields or {"__all__": [exc.message]}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


@area_required(Area.MAILBOXES)
def mailboxes(request: HttpRequest) -> HttpResponse:
    return render(request, "mailboxes/list.html", _context(principal_of(request)))


@require_POST
@area_required(Area.MAILBOXES, level=Level.WRITE)
def mailbox_create(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    domains = list(SendingDomain.objects.values_list("name", flat=True))
    form = CreateForm(request.POST, domains=domains)
    if form.is_valid():
        try:
            mailbox = service.create_mailbox(principal, **form.cleaned_data)
        except ValidationFailed as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"{mailbox.address} created; setting it up on the server.")
            return redirect("deliverability:mailboxes")
    return render(request, "mailboxes/list.html", _context(principal, create_form=form), status=400)


@area_required(Area.MAILBOXES)
def mailbox_history(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    mailbox = service.access_mailbox(principal_of(request), mailbox_id)
    context = {"mailbox": mailbox, "transitions": states.history(mailbox, newest_first=True)}
    return render(request, "mailboxes/history.html", context)


@require_POST
@area_required(Area.MAILBOXES, level=Level.WRITE)
def mailbox_connect(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = ConnectForm(request.POST)
    report = None
    if form.is_valid():
        try:
            mailbox = service.connect_mailbox(principal, **form.cleaned_data)
        except service.ConnectionFailed as exc:
            report = exc.report
            form.add_error(None, exc.message)
        except ValidationFailed as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"{mailbox.address} connected: SMTP and IMAP work.")
            return redirect("deliverability:mailboxes")
    return render(
        request,
        "mailboxes/list.html",
        _context(principal, connect_form=form, connect_report=report),
        status=400,
    )


@require_POST
@area_required(Area.MAILBOXES, level=Level.WRITE)
def mailbox_test(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    principal = principal_of(request)
    mailbox = service.access_mailbox(principal, mailbox_id)
    try:
        report = service.test_mailbox(principal, mailbox)
    except SecretUnavailable as exc:
        messages.error(request, exc.message)
    else:
        (messages.success if report.ok else messages.error)(
            request, f"{mailbox.address}: {report.summary()}"
        )
    return redirect("deliverability:mailboxes")


@require_POST
@area_required(Area.MAILBOXES, level=Level.WRITE)
def mailbox_pause(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    principal = principal_of(request)
    mailbox = service.access_mailbox(principal, mailbox_id)
    service.pause_mailbox(principal, mailbox, reason=request.POST.get("reason", "")[:300])
    messages.success(request, f"{mailbox.address} paused.")
    return redirect("deliverability:mailboxes")


@require_POST
@area_required(Area.MAILBOXES, level=Level.WRITE)
def mailbox_resume(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    principal = principal_of(request)
    mailbox = service.access_mailbox(principal, mailbox_id)
    service.resume_mailbox(principal, mailbox)
    messages.success(request, f"{mailbox.address} resumed.")
    return redirect("deliverability:mailboxes")


@require_POST
@area_required(Area.MAILBOXES, level=Level.WRITE)
def mailbox_limit(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    principal = principal_of(request)
    mailbox = service.access_mailbox(principal, mailbox_id)
    try:
        service.set_daily_limit(principal, mailbox, daily_limit=request.POST.get("daily_limit", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{mailbox.address} may send {mailbox.daily_limit} a day.")
    return redirect("deliverability:mailboxes")


@require_POST
@area_required(Area.MAILBOXES, level=Level.WRITE)
def mailbox_delete(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    principal = principal_of(request)
    mailbox = service.access_mailbox(principal, mailbox_id)
    service.delete_mailbox(principal, mailbox)
    messages.success(request, f"{mailbox.address} deleted.")
    return redirect("deliverability:mailboxes")
