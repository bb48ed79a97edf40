"""Dunning (docs/billing.md): when an overdue payment's grace period ends, the tenant's running
campaigns pause; once it pays, the ones paused here resume (a campaign the tenant paused itself,
or one it archived or completed meanwhile, stays as it is).

Registered into billing's ladder (billing.dunning_hooks, Level.SENDING) by CampaignsConfig.ready.
The send pipeline's tenant check holds any message meanwhile (tenants' sending_holds); pausing
also shows the reason on each campaign and stops the scheduler's visits.
"""

from __future__ import annotations

from typing import Any

from django_tenants.utils import schema_context

from campaigns.models import Campaign, CampaignStatus
from campaigns.services.campaigns.moves import transition_to
from penguinmails.errors import IllegalTransition
from tenants.models import Tenant
from tenants.services.access import operator_principal

PAUSE_REASON = "billing: payment overdue, grace period over"


def pause_for_billing(tenant: Tenant) -> dict[str, Any]:
    """Pause every running campaign of `tenant`; returns their ids."""
    paused: list[int] = []
    with schema_context(tenant.schema_name):
        principal = operator_principal(tenant)
        running = Campaign.objects.filter(status=CampaignStatus.RUNNING).order_by("pk")
        for campaign in running:
            try:
                transition_to(principal, campaign, "pause", reason=PAUSE_REASON)
            except IllegalTransition:
                continue  # moved meanwhile (completed, paused by a person)
            paused.append(campaign.pk)
    return {"campaigns": paused}


def resume_after_billing(tenant: Tenant, record: dict[str, Any]) -> dict[str, Any]:
    """Resume the campaigns `pause_for_billing` paused that are still paused."""
    resumed: list[int] = []
    wanted = [int(pk) for pk in record.get("campaigns", [])]
    with schema_context(tenant.schema_name):
        principal = operator_principal(tenant)
        rows = Campaign.objects.filter(pk__in=wanted, status=CampaignStatus.PAUSED).order_by("pk")
        for campaign in rows:
            try:
                transition_to(principal, campaign, "resume", reason="billing: paid")
            except IllegalTransition:
                continue
            resumed.append(campaign.pk)
    return {"campaigns": resumed}
