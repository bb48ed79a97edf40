"""Automatic protection of campaigns, and the hook that runs protection after each recorded
bounce or complaint (docs/inbound.md, "Automatic protection").

`after_bump` is registered in `stats.rollups.AFTER_BUMP` by CampaignsConfig.ready: when a batch
of rollup increments counts a bounce or a complaint (the send pipeline's SMTP refusals, the
feedback actions), the campaigns and the sending mailboxes and domains it touched are judged at
once, in the same transaction. A campaign's window is its CampaignDailyStat rows; past the pause
line it moves running -> paused through `transition_to` (the transition log records why)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignDailyStat, CampaignStatus
from campaigns.services.campaigns.moves import transition_to
from campaigns.services.stats import Bump
from campaigns.services.stats.windows import campaign_daily
from deliverability.models import ProtectedKind, ProtectionEvent, ProtectionLevel
from deliverability.services import protection as senders
from deliverability.services import protection_state as ps
from deliverability.services.sender_stats import current_tenant
from penguinmails import indexes
from penguinmails.queue.producer import JobSpec, enqueue_many
from tenants.models import Tenant
from tenants.services.access import operator_principal

log = logging.getLogger(__name__)

CHECK_DUE_TASK = "protection.check_due"
CHECK_TASK = "protection.check"


def evaluate_campaign(tenant: Tenant, campaign: Campaign) -> ProtectionEvent | None:
    """Judge one campaign's window; flag or pause it (recorded, owners and staff emailed)."""
    state = ps.state_of(ProtectedKind.CAMPAIGN, campaign.pk, lock=True)
    start = ps.window_start(timezone.now().date(), state)
    figures = ps.window_figures(campaign_daily(campaign.pk, start), start, state)
    verdict = ps.judge(figures)
    if verdict is not None and verdict.level == ProtectionLevel.OK:
        ps.clear_flag(state)
    if verdict is None or not ps.escalates(state, verdict):
        return None
    event = ps.record(state, verdict, figures, start=start, label=campaign.name)
    if verdict.level == ProtectionLevel.PAUSED and campaign.status in (
        CampaignStatus.RUNNING,
        CampaignStatus.SCHEDULED,
    ):
        transition_to(operator_principal(tenant), campaign, "pause", reason=event.reason)
    senders.notify(tenant, event, "Campaign")
    log.info("protection: campaign %s %s", campaign.pk, event.action)
    return event


def evaluate(campaign_ids: Collection[int], mailbox_ids: Collection[int]) -> list[ProtectionEvent]:
    tenant = current_tenant()
    if tenant is None:
        return []
    events = senders.evaluate_senders(mailbox_ids)
    for campaign in Campaign.objects.filter(pk__in=campaign_ids).order_by("pk"):
        event = evaluate_campaign(tenant, campaign)
        if event is not None:
            events.append(event)
    return events


def after_bump(increments: Sequence[Bump]) -> None:
    """The rollup writer's hook: judge what a batch with bounces or complaints touched."""
    with transaction.atomic():
        evaluate(
            {i.campaign_id for i in increments},
            {i.mailbox_id for i in increments if i.mailbox_id},
        )


def evaluate_tenant() -> list[ProtectionEvent]:
    """The beat's safety net in one tenant schema: its senders and its campaigns with numbers
    in the window."""
    since = timezone.now().date() - dt.timedelta(days=settings.PROTECTION_WINDOW_DAYS - 1)
    events = senders.evaluate_tenant()
    ids = set(
        CampaignDailyStat.objects.filter(day__gte=since).values_list("campaign_id", flat=True)
    )
    with transaction.atomic():
        events += evaluate(ids, ())
    return events


def enqueue_checks() -> int:
    """The beat's safety net (public): one check job per tenant with a running campaign (the
    public index; no loop over tenant schemas). Returns the tenants. (The platform bounce rate
    is the alert engine's rule platform.bounce_rate.)"""
    ids = indexes.due_running_tenants(timezone.now() + dt.timedelta(days=3650))
    tenants = Tenant.objects.filter(pk__in=ids)
    with transaction.atomic():
        enqueue_many(
            JobSpec(CHECK_TASK, {}, t, idempotency_key=f"protection-check:{t.pk}") for t in tenants
        )
    return len(ids)
