"""A draft's sequence: steps and their weighted variants (template, weight), added and removed
while the campaign is a draft."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max

from campaigns.models import Campaign, DelayUnit, EmailTemplate, SequenceStep, StepVariant
from campaigns.services.campaigns.access import _actor, _fail, _in_schema, _lock_draft
from penguinmails.errors import NotFound, ValidationFailed
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

MAX_STEPS = 20
MAX_VARIANTS = 10


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
