"""Campaign definition and lifecycle (docs: issue 5, item 3); sending is in campaigns.sending.

A campaign is editable (settings, steps, variants) only while it is a draft. Its status moves
only through `transition_to`, which locks the row and moves it through the one state-machine
helper (the table in `campaigns.lifecycles`, a row in the transition log) with an audit event in
the same transaction. Every function runs in the
tenant's schema and checks Area.CAMPAIGNS.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils.timezone import now

from campaigns.models import (
    Campaign,
    CampaignLead,
    CampaignStatus,
    DelayUnit,
    EmailTemplate,
    EnrollmentStatus,
    Lead,
    LeadList,
    LeadStatus,
    Message,
    MessageStatus,
    SequenceStep,
    StepVariant,
)
from campaigns.sending.dispatch import request_schedule
from campaigns.sending.enrollments import enrol
from campaigns.services.leads import validate_timezone
from campaigns.services.stats import Bump, bump
from deliverability.models import Mailbox
from penguinmails import states
from penguinmails.errors import IllegalTransition, NotFound, ValidationFailed
from penguinmails.models import RunningCampaign, ScheduledCampaign
from tenants.db import require_schema
from tenants.models import User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

MAX_NAME_CHARS = 200
MAX_STEPS = 20
MAX_VARIANTS = 10
MAX_GAP_SECONDS = 24 * 3600
S = CampaignStatus
REPLYABLE = (MessageStatus.SENT, MessageStatus.UNKNOWN)

# action -> (statuses it may start from, status it leads to). The one table of allowed moves.
MOVES: dict[str, tuple[frozenset[str], str]] = {
    "schedule": (frozenset({S.DRAFT}), S.SCHEDULED),
    "unschedule": (frozenset({S.SCHEDULED}), S.DRAFT),
    "start": (frozenset({S.DRAFT, S.SCHEDULED}), S.RUNNING),
    "pause": (frozenset({S.SCHEDULED, S.RUNNING}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.RUNNING),
    "complete": (frozenset({S.RUNNING, S.PAUSED}), S.COMPLETED),
    # A running campaign is paused before it is archived, so an archive never cuts a send.
    "archive": (frozenset({S.DRAFT, S.SCHEDULED, S.PAUSED, S.COMPLETED}), S.ARCHIVED),
}
# Moves out of a draft need a complete definition.
_NEEDS_READY = {"schedule", "start"}


def _in_schema(principal: Principal) -> None:
    require_schema(principal.tenant, "campaign services")


def _actor(principal: Principal) -> User | None:
    return principal.user


def _email(principal: Principal) -> str:
    return principal.user.email if principal.user else ""


def _fail(errors: dict[str, list[str]], prefix: str) -> ValidationFailed:
    first = next(iter(errors.values()))[0]
    return ValidationFailed(f"{prefix}: {first}", fields=errors)


# --- reads ---------------------------------------------------------------------------------------
def list_campaigns(principal: Principal) -> QuerySet[Campaign]:
    require(principal, Area.CAMPAIGNS, Level.READ)
    _in_schema(principal)
    return Campaign.objects.all()


def access_campaign(principal: Principal, campaign_id: int | str) -> Campaign:
    """One of the tenant's campaigns, or NotFound (other tenants' rows live in other schemas)."""
    require(principal, Area.CAMPAIGNS, Level.READ)
    _in_schema(principal)
    try:
        found = Campaign.objects.filter(pk=int(campaign_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such campaign.")
    return found


def access_step(principal: Principal, campaign: Campaign, step_id: int | str) -> SequenceStep:
    try:
        found = campaign.steps.filter(pk=int(step_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such step.")
    return found


# --- validation ----------------------------------------------------------------------------------
DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "use_lead_timezone": False,
    "window_days": [0, 1, 2, 3, 4],
    "window_start": time(9),
    "window_end": time(17),
    "daily_cap": 500,
    "min_gap_seconds": 60,
    "max_gap_seconds": 180,
    "stop_on_reply": True,
    "track_opens": False,  # docs/sending.md, "Content": the pixel is opt-in
    "plain_text_only": False,
    "start_at": None,
    "lead_list_ids": [],
    "mailbox_ids": [],
}


def _ids(raw: Iterable[Any] | None) -> list[int] | None:
    try:
        return sorted({int(v) for v in (raw or [])})
    except (TypeError, ValueError):
        return None


def _cleaned(data: dict[str, Any], *, exclude_pk: int | None = None) -> dict[str, Any]:
    """The settings to store, or ValidationFailed naming every field's problem at once."""
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    name = " ".join(str(data.get("name") or "").split())
    if not name:
        errors["name"] = ["Give the campaign a name."]
    elif len(name) > MAX_NAME_CHARS:
        errors["name"] = [f"At most {MAX_NAME_CHARS} characters."]
    elif Campaign.objects.filter(name__iexact=name).exclude(pk=exclude_pk or 0).exists():
        errors["name"] = [f"A campaign named “{name}” already exists."]
    out["name"] = name
    try:
        out["timezone"] = validate_timezone(str(data.get("timezone") or "")) or "UTC"
    except ValueError as exc:
        errors["timezone"] = [str(exc)]
    out["use_lead_timezone"] = bool(data.get("use_lead_timezone"))
    out["stop_on_reply"] = bool(data.get("stop_on_reply"))
    out["track_opens"] = bool(data.get("track_opens"))
    out["plain_text_only"] = bool(data.get("plain_text_only"))
    _clean_window(data, out, errors)
    _clean_pacing(data, out, errors)
    start_at = data.get("start_at")
    if start_at is not None and (not isinstance(start_at, datetime) or start_at.tzinfo is None):
        errors["start_at"] = ["Give a date and time with a timezone."]
    out["start_at"] = start_at
    _clean_targets(data, out, errors)
    if errors:
        raise _fail(errors, "The campaign was not saved")
    return out


def _clean_window(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """`_cleaned`'s sending window: the days of the week and the times of day."""
    days = _ids(data.get("window_days"))
    if not days or not set(days) <= set(range(7)):
        errors["window_days"] = ["Pick at least one day (0 = Monday … 6 = Sunday)."]
    out["window_days"] = days or []
    start, end = data.get("window_start"), data.get("window_end")
    if not isinstance(start, time):
        errors["window_start"] = ["Give a start time such as 09:00."]
    if not isinstance(end, time):
        errors["window_end"] = ["Give an end time such as 17:00."]
    elif isinstance(start, time) and start >= end:
        errors["window_end"] = ["The window must end after it starts (same day)."]
    out["window_start"], out["window_end"] = start, end


def _clean_pacing(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """`_cleaned`'s pacing: the daily cap and the gaps between sends."""
    for field, low in (("daily_cap", 1), ("min_gap_seconds", 0), ("max_gap_seconds", 0)):
        try:
            value = int(data.get(field))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            errors[field] = ["Give a whole number."]
            continue
        if value < low or value > (MAX_GAP_SECONDS if "gap" in field else 1_000_000):
            errors[field] = [f"Out of range (at least {low})."]
        out[field] = value
    if (
        "min_gap_seconds" in out
        and "max_gap_seconds" in out
        and out["min_gap_seconds"] > out["max_gap_seconds"]
    ):
        errors["max_gap_seconds"] = ["The largest gap must be at least the smallest."]


def _clean_targets(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """`_cleaned`'s lead lists and mailboxes: lists of ids that exist."""
    for field, model in (("lead_list_ids", LeadList), ("mailbox_ids", Mailbox)):
        ids = _ids(data.get(field))
        if ids is None:
            errors[field] = ["Give a list of ids."]
            continue
        known = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [i for i in ids if i not in known]
        if unknown:
            errors[field] = [f"Unknown ids: {', '.join(map(str, unknown))}."]
        out[field] = ids


def _apply(campaign: Campaign, fields: dict[str, Any]) -> None:
    lists, mailboxes = fields.pop("lead_list_ids"), fields.pop("mailbox_ids")
    for key, value in fields.items():
        setattr(campaign, key, value)
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError:  # a concurrent save of the same name won
        message = f"A campaign named “{campaign.name}” already exists."
        raise ValidationFailed(message, fields={"name": [message]}) from None
    campaign.lead_lists.set(lists)
    campaign.mailboxes.set(mailboxes)


def _lock_draft(campaign: Campaign) -> Campaign:
    locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    if locked is None:
        raise NotFound("No such campaign.")
    if locked.status != CampaignStatus.DRAFT:
        raise IllegalTransition(
            f"Only a draft can be edited; this campaign is {locked.get_status_display().lower()}."
        )
    return locked


def current_settings(campaign: Campaign) -> dict[str, Any]:
    values = {key: getattr(campaign, key) for key in DEFAULTS if not key.endswith("_ids")}
    values["name"] = campaign.name
    values["lead_list_ids"] = list(campaign.lead_lists.values_list("pk", flat=True))
    values["mailbox_ids"] = list(campaign.mailboxes.values_list("pk", flat=True))
    return values


# --- writes: definition --------------------------------------------------------------------------
def create_campaign(principal: Principal, *, name: str, **settings: Any) -> Campaign:
    """A new draft; settings left out take DEFAULTS."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        fields = _cleaned({**DEFAULTS, **settings, "name": name})
        campaign = Campaign(created_by_email=_email(principal))
        _apply(campaign, fields)
        audit(
            "campaign.created",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=campaign.pk,
            name=campaign.name,
        )
    return campaign


def update_campaign(principal: Principal, campaign: Campaign, **changes: Any) -> Campaign:
    """Change a draft's settings (the fields not given keep their values)."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        locked = _lock_draft(campaign)
        fields = _cleaned({**current_settings(locked), **changes}, exclude_pk=locked.pk)
        _apply(locked, fields)
        audit(
            "campaign.updated",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=locked.pk,
            fields=sorted(changes),
        )
    return locked


def delete_campaign(principal: Principal, campaign: Campaign) -> None:
    """Delete a draft (anything that ran is archived instead: its history stays)."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        locked = _lock_draft(campaign)
        locked.delete()
        audit(
            "campaign.deleted",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=campaign.pk,
            name=campaign.name,
        )


def _clean_variant(template_id: Any, weight: Any) -> tuple[EmailTemplate, int]:
    errors: dict[str, list[str]] = {}
    template = None
    try:
        template = EmailTemplate.objects.filter(pk=int(template_id)).first()
    except (TypeError, ValueError):
        pass
    if template is None:
        errors["template_id"] = ["Pick one of your templates."]
    try:
        weight = int(weight)
    except (TypeError, ValueError):
        weight = 0
    if weight < 1 or weight > 1000:
        errors["weight"] = ["A weight is a whole number from 1 to 1000."]
    if errors:
        raise _fail(errors, "The variant was not saved")
    assert template is not None
    return template, weight


def add_step(
    principal: Principal,
    campaign: Campaign,
    *,
    delay_amount: int,
    delay_unit: str = DelayUnit.DAYS,
    variants: list[tuple[Any, Any]],
) -> SequenceStep:
    """Append a step with its variants, (template id, weight) pairs: at least one."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    errors: dict[str, list[str]] = {}
    try:
        delay = int(delay_amount)
    except (TypeError, ValueError):
        delay = -1
    if delay < 0 or delay > 365:
        errors["delay_amount"] = ["A delay is a whole number from 0 to 365."]
    if delay_unit not in DelayUnit.values:
        errors["delay_unit"] = ["Hours or days."]
    if not variants:
        errors["variants"] = ["A step needs at least one template."]
    elif len(variants) > MAX_VARIANTS:
        errors["variants"] = [f"At most {MAX_VARIANTS} variants."]
    if errors:
        raise _fail(errors, "The step was not saved")
    cleaned = [_clean_variant(t, w) for t, w in variants]
    with transaction.atomic():
        locked = _lock_draft(campaign)
        count = locked.steps.count()
        if count >= MAX_STEPS:
            message = f"At most {MAX_STEPS} steps."
            raise ValidationFailed(message, fields={"steps": [message]})
        last = locked.steps.aggregate(m=Max("order"))["m"] or 0
        step = SequenceStep.objects.create(
            campaign=locked, order=last + 1, delay_amount=delay, delay_unit=delay_unit
        )
        StepVariant.objects.bulk_create(
            StepVariant(step=step, template=t, weight=w) for t, w in cleaned
        )
        audit(
            "campaign.step_added",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=locked.pk,
            step=step.order,
        )
    return step


def remove_step(principal: Principal, step: SequenceStep) -> None:
    """Remove a step; the later steps move up so orders stay 1..n."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        locked = _lock_draft(step.campaign)
        deleted, _ = SequenceStep.objects.filter(pk=step.pk, campaign=locked).delete()
        if not deleted:
            raise NotFound("No such step.")
        # One by one in ascending order, so the unique (campaign, order) never collides.
        for later in locked.steps.filter(order__gt=step.order).order_by("order"):
            later.order -= 1
            later.save(update_fields=["order"])
        audit(
            "campaign.step_removed",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=locked.pk,
            step=step.order,
        )


def add_variant(
    principal: Principal, step: SequenceStep, *, template_id: Any, weight: Any = 1
) -> StepVariant:
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    template, weight = _clean_variant(template_id, weight)
    with transaction.atomic():
        _lock_draft(step.campaign)
        if step.variants.count() >= MAX_VARIANTS:
            message = f"At most {MAX_VARIANTS} variants."
            raise ValidationFailed(message, fields={"variants": [message]})
        variant = StepVariant.objects.create(step=step, template=template, weight=weight)
        audit(
            "campaign.variant_added",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=step.campaign_id,
            step=step.order,
            template_id=template.pk,
        )
    return variant


def remove_variant(principal: Principal, variant: StepVariant) -> None:
    """Remove a variant; a step's last variant stays (remove the step instead)."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        _lock_draft(variant.step.campaign)
        if variant.step.variants.count() <= 1:
            message = "A step needs at least one variant; remove the step instead."
            raise ValidationFailed(message, fields={"variants": [message]})
        StepVariant.objects.filter(pk=variant.pk).delete()
        audit(
            "campaign.variant_removed",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=variant.step.campaign_id,
            step=variant.step.order,
        )


# --- the state machine ---------------------------------------------------------------------------
def readiness_problems(campaign: Campaign) -> dict[str, list[str]]:
    """What keeps a draft from being scheduled or started (empty when it is ready)."""
    problems: dict[str, list[str]] = {}
    if not campaign.steps.exists():
        problems["steps"] = ["Add at least one step."]
    elif campaign.steps.filter(variants__isnull=True).exists():
        problems["steps"] = ["Every step needs a template."]
    if not campaign.mailboxes.exists():
        problems["mailbox_ids"] = ["Pick at least one mailbox to send from."]
    if not campaign.lead_lists.exists():
        problems["lead_list_ids"] = ["Pick at least one lead list."]
    return problems


def allowed_actions(campaign: Campaign) -> list[str]:
    return [name for name, (sources, _) in MOVES.items() if campaign.status in sources]


def transition_to(
    principal: Principal, campaign: Campaign, action: str, *, reason: str = ""
) -> Campaign:
    """Apply one named move of MOVES, or IllegalTransition (409) when the status does not allow
    it; a draft leaving for scheduled/running must be complete (ValidationFailed otherwise)."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    if action not in MOVES:
        raise IllegalTransition(f"Unknown campaign action {action!r}.")
    sources, target = MOVES[action]
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None:
            raise NotFound("No such campaign.")
        if locked.status not in sources:
            raise IllegalTransition(
                f"{_with_article(locked.get_status_display().lower())} campaign cannot {action}."
            )
        if action in _NEEDS_READY and locked.status == CampaignStatus.DRAFT:
            problems = readiness_problems(locked)
            if problems:
                raise _fail(problems, f"The campaign cannot {action}")
        before = locked.status
        states.transition(locked, target, reason=reason, actor=_actor(principal))
        _index_running(principal, locked)
        if target == CampaignStatus.RUNNING:
            # Enrol the lists' leads now and ask for a scheduler run: sending starts at once
            # instead of at the next tick (docs/sending.md).
            enrol(locked, now=now())
            request_schedule(principal.tenant)
        audit(
            f"campaign.{action}",
            tenant=principal.tenant,
            actor=_actor(principal),
            campaign_id=locked.pk,
            from_status=before,
            to_status=target,
        )
    return locked


def _with_article(word: str) -> str:
    return f"{'An' if word[:1] in 'aeiou' else 'A'} {word}"


def _index_running(principal: Principal, campaign: Campaign) -> None:
    """Keep the public indexes of running campaigns (the scheduler's list of work) and of
    scheduled ones (`campaigns.services.starts`) in step with the status, in the same
    transaction."""
    if campaign.status == CampaignStatus.SCHEDULED:
        ScheduledCampaign.objects.update_or_create(
            tenant=principal.tenant,
            campaign_id=campaign.pk,
            defaults={"start_at": campaign.start_at or now()},
        )
    else:
        ScheduledCampaign.objects.filter(tenant=principal.tenant, campaign_id=campaign.pk).delete()
    if campaign.status == CampaignStatus.RUNNING:
        RunningCampaign.objects.update_or_create(
            tenant=principal.tenant, campaign_id=campaign.pk, defaults={"next_run_at": now()}
        )
    else:
        RunningCampaign.objects.filter(tenant=principal.tenant, campaign_id=campaign.pk).delete()


def schedule_campaign(principal: Principal, campaign: Campaign) -> Campaign:
    return transition_to(principal, campaign, "schedule")


def start_campaign(principal: Principal, campaign: Campaign) -> Campaign:
    return transition_to(principal, campaign, "start")


def pause_campaign(principal: Principal, campaign: Campaign) -> Campaign:
    return transition_to(principal, campaign, "pause")


def resume_campaign(principal: Principal, campaign: Campaign) -> Campaign:
    return transition_to(principal, campaign, "resume")


def complete_campaign(principal: Principal, campaign: Campaign) -> Campaign:
    return transition_to(principal, campaign, "complete")


def archive_campaign(principal: Principal, campaign: Campaign) -> Campaign:
    return transition_to(principal, campaign, "archive")


# --- stop on reply -------------------------------------------------------------------------------
def mark_lead_replied(principal: Principal, lead_id: int | str) -> Lead:
    """Mark a lead replied: campaigns with stop_on_reply send it nothing more (its enrollments
    there stop, the latest sent message of each gets replied_at and the `replied` rollup counts
    it). Idempotent; the reply poller (later) calls this too. Unsubscribed or bounced leads keep
    that stronger status."""
    require(principal, Area.CAMPAIGNS, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        try:
            lead = Lead.objects.select_for_update().filter(pk=int(lead_id)).first()
        except (TypeError, ValueError):
            lead = None
        if lead is None:
            raise NotFound("No such lead.")
        if lead.status == LeadStatus.ACTIVE:
            lead.status = LeadStatus.REPLIED
            lead.save(update_fields=["status", "updated_at"])
            audit(
                "lead.replied",
                tenant=principal.tenant,
                actor=_actor(principal),
                lead_id=lead.pk,
            )
        _stop_on_reply(lead)
    return lead


def _stop_on_reply(lead: Lead) -> None:
    at = now()
    CampaignLead.objects.filter(
        lead=lead, status=EnrollmentStatus.ACTIVE, campaign__stop_on_reply=True
    ).update(status=EnrollmentStatus.STOPPED, next_due_at=None, stop_reason="Replied.")
    increments = []
    for campaign_id in lead.messages.values_list("campaign_id", flat=True).distinct():
        latest = (
            Message.objects.filter(
                lead=lead, campaign_id=campaign_id, status__in=REPLYABLE, sent_at__isnull=False
            )
            .order_by("-sent_at", "-id")
            .first()
        )
        if latest is None or latest.replied_at is not None:
            continue
        # Conditional, so two concurrent calls count the reply once.
        if Message.objects.filter(pk=latest.pk, replied_at__isnull=True).update(replied_at=at):
            increments.append(
                Bump(campaign_id, latest.step_id, latest.variant_id, at.date(), "replied")
            )
    bump(increments)
