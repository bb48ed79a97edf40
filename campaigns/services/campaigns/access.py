"""Shared helpers of the campaign services: the tenant's campaigns and steps fetched through
`access_*` (NotFound for anything else), a draft locked for editing, and the small helpers every
write uses (schema check, actor, ValidationFailed from a dict of field errors)."""

from __future__ import annotations

from django.db.models import QuerySet

from campaigns.models import Campaign, CampaignStatus, SequenceStep
from penguinmails.errors import IllegalTransition, NotFound, ValidationFailed
from tenants.db import require_schema
from tenants.models import User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require


def _in_schema(principal: Principal) -> None:
    require_schema(principal.tenant, "campaign services")


def _actor(principal: Principal) -> User | None:
    return principal.user


def _email(principal: Principal) -> str:
    return principal.user.email if principal.user else ""


def _fail(errors: dict[str, list[str]], prefix: str) -> ValidationFailed:
    first = next(iter(errors.values()))[0]
    return ValidationFailed(f"{prefix}: {first}", fields=errors)


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


def _lock_draft(campaign: Campaign) -> Campaign:
    locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    if locked is None:
        raise NotFound("No such campaign.")
    if locked.status != CampaignStatus.DRAFT:
        raise IllegalTransition(
            f"Only a draft can be edited; this campaign is {locked.get_status_display().lower()}."
        )
    return locked
