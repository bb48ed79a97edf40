"""A campaign's status moves: the one table of allowed moves (MOVES), `transition_to` and its named
shortcuts, the public indexes of scheduled and running campaigns kept in step with the status,
and the deletion of a draft."""

from __future__ import annotations

from django.db import transaction
from django.utils.timezone import now

from campaigns import webhook_events
from campaigns.models import Campaign, CampaignStatus
from campaigns.sending.dispatch import request_schedule
from campaigns.sending.enrollments import enrol
from campaigns.services.campaigns.access import _actor, _fail, _in_schema, _lock_draft
from campaigns.services.stats.windows import acknowledge_campaign
from penguinmails import indexes, states
from penguinmails.analytics_events import capture
from penguinmails.errors import IllegalTransition, NotFound
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

S = CampaignStatus

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
        if action == "resume":  # automatic protection counts only what comes after
            acknowledge_campaign(locked, actor=_actor_label(principal))
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
        if action == "start":
            capture("campaign started", principal.tenant, {"campaign_id": locked.pk})
        if target == CampaignStatus.COMPLETED:
            webhook_events.campaign_completed(locked, reason)
    return locked


def _actor_label(principal: Principal) -> str:
    return principal.user.email if principal.user else "the operator"


def _with_article(word: str) -> str:
    return f"{'An' if word[:1] in 'aeiou' else 'A'} {word}"


def _index_running(principal: Principal, campaign: Campaign) -> None:
    """Keep the public indexes of running campaigns (the scheduler's list of work) and of
    scheduled ones (`campaigns.services.starts`) in step with the status, in the same
    transaction."""
    tenant_id = principal.tenant.pk
    if campaign.status == CampaignStatus.SCHEDULED:
        indexes.index_scheduled(tenant_id, campaign.pk, start_at=campaign.start_at or now())
    else:
        indexes.unindex_scheduled(tenant_id, campaign.pk)
    if campaign.status == CampaignStatus.RUNNING:
        indexes.index_running(tenant_id, campaign.pk, next_run_at=now())
    else:
        indexes.unindex_running(tenant_id, campaign.pk)


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
