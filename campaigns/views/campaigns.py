"""Campaign pages: list, create, and the campaign page (settings, steps and variants while a
draft; status buttons; once it left draft, its progress, statistics and chart from
campaigns.views.stats). Every write calls a service in campaigns.services.campaigns."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns.models import (
    Campaign,
    CampaignStatus,
    DelayUnit,
    EmailTemplate,
    LeadList,
    LeadListMember,
)
from campaigns.services import campaigns as svc
from campaigns.views.stats import days_of, stats_context
from deliverability.models import Mailbox
from penguinmails import states
from penguinmails.errors import NotFound, ValidationFailed
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.web import area_required, principal_of

DAYS = [(str(i), name) for i, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])]
ACTION_LABELS = {
    "schedule": "Schedule",
    "unschedule": "Back to draft",
    "start": "Start",
    "pause": "Pause",
    "resume": "Resume",
    "complete": "Mark completed",
    "archive": "Archive",
}


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="An IANA name.")
    use_lead_timezone = forms.BooleanField(
        required=False, label="Use each lead's timezone when it has one"
    )
    window_days = forms.MultipleChoiceField(
        choices=DAYS, widget=forms.CheckboxSelectMultiple, initial=["0", "1", "2", "3", "4"]
    )
    window_start = forms.TimeField(initial="09:00")
    window_end = forms.TimeField(initial="17:00")
    daily_cap = forms.IntegerField(initial=500)
    min_gap_seconds = forms.IntegerField(initial=60, label="Min gap (s)")
    max_gap_seconds = forms.IntegerField(initial=180, label="Max gap (s)")
    stop_on_reply = forms.BooleanField(required=False, initial=True)
    delay_on_out_of_office = forms.BooleanField(
        required=False,
        initial=False,
        label="Wait for out-of-office returns",
        help_text="When a lead's auto-reply says when they are back, their next step waits "
        "until that date (at most INBOUND_OOO_MAX_DELAY_DAYS ahead). An auto-reply never stops "
        "the sequence.",
    )
    track_opens = forms.BooleanField(
        required=False,
        initial=False,
        label="Track opens",
        help_text="Adds a 1-pixel image to the HTML. Spam filters count it against short "
        "messages and many mail clients preload it, so opens are approximate; off by default.",
    )
    plain_text_only = forms.BooleanField(
        required=False,
        initial=False,
        label="Plain text only",
        help_text="Sends the text version alone: no HTML, no pixel, links exactly as written.",
    )
    lead_list_ids = forms.MultipleChoiceField(
        required=False, label="Lead lists", widget=forms.CheckboxSelectMultiple
    )
    mailbox_ids = forms.MultipleChoiceField(
        required=False, label="Mailboxes", widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lists = self.fields["lead_list_ids"]
        boxes = self.fields["mailbox_ids"]
        assert isinstance(lists, forms.ChoiceField) and isinstance(boxes, forms.ChoiceField)
        lists.choices = [(str(x.pk), x.name) for x in LeadList.objects.all()]
        boxes.choices = [
            (str(m.pk), f"{m.address} ({m.get_status_display()}, {m.daily_limit}/day)")
            for m in Mailbox.objects.order_by("address")
        ]

    def settings(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        for key in ("window_days", "lead_list_ids", "mailbox_ids"):
            data[key] = [int(v) for v in data[key]]
        return data


def empty_list_warning(campaign: Campaign) -> str:
    """A warning when the campaign targets lead lists and none of them holds a lead: it would
    email nobody (not an error: leads may be imported later). "" otherwise."""
    names = [f"“{x.name}”" for x in campaign.lead_lists.all()]
    if not names or LeadListMember.objects.filter(leadlist__campaigns=campaign).exists():
        return ""
    if len(names) == 1:
        return f"The lead list {names[0]} has no leads yet: this campaign would email nobody."
    return f"The lead lists {', '.join(names)} have no leads yet: this campaign would email nobody."


def _apply_errors(form: forms.Form, exc: ValidationFailed) -> None:
    for field, errors in (exc.fields or {"__all__": [exc.message]}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


def _initial(campaign: Campaign) -> dict[str, Any]:
    values = svc.current_settings(campaign)
    for key in ("window_days", "lead_list_ids", "mailbox_ids"):
        values[key] = [str(v) for v in values[key]]
    return values


def _page(
    request: HttpRequest,
    principal: Principal,
    campaign: Campaign,
    *,
    form: CampaignForm | None = None,
    status: int = 200,
    days: int | None = None,
) -> HttpResponse:
    can_write = principal.allows(Area.CAMPAIGNS, Level.WRITE)
    sending = (
        {} if campaign.status == CampaignStatus.DRAFT else stats_context(principal, campaign, days)
    )
    return render(
        request,
        "campaigns_dash/detail.html",
        {
            "campaign": campaign,
            "form": form or CampaignForm(initial=_initial(campaign)),
            "steps": campaign.steps.prefetch_related("variants__template"),
            "templates": EmailTemplate.objects.all(),
            "is_draft": campaign.status == CampaignStatus.DRAFT,
            "can_write": can_write,
            "actions": [(a, ACTION_LABELS[a]) for a in svc.allowed_actions(campaign)],
            "problems": svc.readiness_problems(campaign),
            "transitions": states.history(campaign),
            "empty_list_warning": empty_list_warning(campaign),
            **sending,
        },
        status=status,
    )


@area_required(Area.CAMPAIGNS)
def campaign_list(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    return render(
        request,
        "campaigns_dash/list.html",
        {
            "campaigns": svc.list_campaigns(principal).prefetch_related("steps"),
            "can_write": principal.allows(Area.CAMPAIGNS, Level.WRITE),
        },
    )


@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def campaign_new(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    form = CampaignForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                campaign = svc.create_campaign(principal, **form.settings())
            except ValidationFailed as exc:
                _apply_errors(form, exc)
            else:
                if empty_list_warning(campaign):
                    created = f"Campaign “{campaign.name}” created, but its lead lists are empty."
                    messages.warning(request, created)
                else:
                    messages.success(request, f"Campaign “{campaign.name}” created.")
                return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)
        return render(request, "campaigns_dash/new.html", {"form": form}, status=400)
    return render(request, "campaigns_dash/new.html", {"form": form})


@area_required(Area.CAMPAIGNS)
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    if request.method == "POST":
        require(principal, Area.CAMPAIGNS, Level.WRITE)
        form = CampaignForm(request.POST)
        if form.is_valid():
            try:
                svc.update_campaign(principal, campaign, **form.settings())
            except ValidationFailed as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, "Campaign saved.")
                return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)
        return _page(request, principal, campaign, form=form, status=400)
    return _page(request, principal, campaign, days=days_of(request))


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def step_add(request: HttpRequest, campaign_id: int) -> HttpResponse:
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    data = request.POST
    try:
        svc.add_step(
            principal,
            campaign,
            delay_amount=data.get("delay_amount", 0),  # type: ignore[arg-type]
            delay_unit=data.get("delay_unit", DelayUnit.DAYS),
            variants=[(data.get("template_id"), data.get("weight", 1))],
        )
    except ValidationFailed as exc:
        messages.error(request, f"Step not added: {exc.message}")
    return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def step_remove(request: HttpRequest, campaign_id: int, step_id: int) -> HttpResponse:
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    svc.remove_step(principal, svc.access_step(principal, campaign, step_id))
    return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def variant_add(request: HttpRequest, campaign_id: int, step_id: int) -> HttpResponse:
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    step = svc.access_step(principal, campaign, step_id)
    try:
        svc.add_variant(
            principal,
            step,
            template_id=request.POST.get("template_id"),
            weight=request.POST.get("weight", 1),
        )
    except ValidationFailed as exc:
        messages.error(request, f"Variant not added: {exc.message}")
    return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def variant_remove(
    request: HttpRequest, campaign_id: int, step_id: int, variant_id: int
) -> HttpResponse:
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    step = svc.access_step(principal, campaign, step_id)
    variant = step.variants.filter(pk=variant_id).first()
    if variant is None:
        raise NotFound("No such variant.")
    try:
        svc.remove_variant(principal, variant)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
    return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def campaign_move(request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
    """A status button; an illegal move renders the 409 page (IllegalTransition)."""
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    try:
        svc.transition_to(principal, campaign, action)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{ACTION_LABELS.get(action, action)}: done.")
    return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)


@require_POST
@area_required(Area.CAMPAIGNS, level=Level.WRITE)
def campaign_delete(request: HttpRequest, campaign_id: int) -> HttpResponse:
    principal = principal_of(request)
    campaign = svc.access_campaign(principal, campaign_id)
    svc.delete_campaign(principal, campaign)
    messages.success(request, f"Campaign “{campaign.name}” deleted.")
    return redirect("campaigns:index")
