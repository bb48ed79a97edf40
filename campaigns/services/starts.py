"""A campaign scheduled for a start time starts at that time (docs/states.md).

`schedule` puts the campaign in the public index ScheduledCampaign with its start time (now when
it has none); leaving `scheduled` takes it out, in the same transaction as the move
(`campaigns.services.campaigns._index_running`, through the core's `penguinmails.indexes`, the
index's one writer). The beat entry `campaigns-start-due` enqueues `campaigns.start_due`, which
reads the index (never a loop over every tenant schema) and starts each due campaign through the
state machine, in its tenant's schema, as the operator.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import Campaign, CampaignStatus
from campaigns.services.campaigns import transition_to
from penguinmails import indexes
from penguinmails.errors import DomainError
from penguinmails.models import ScheduledCampaign
from tenants.models import Tenant, TenantStatus
from tenants.services.access import operator_principal

log = logging.getLogger(__name__)

START_DUE_TASK = "campaigns.start_due"
START_REASON = "Its start time came."


def start_due(*, now: datetime | None = None) -> int:
    """Start every scheduled campaign whose start time has come; returns how many started."""
    moment = now or timezone.now()
    by_tenant: dict[int, list[ScheduledCampaign]] = {}
    for row in indexes.due_scheduled(moment, tenant_status=TenantStatus.ACTIVE):
        by_tenant.setdefault(row.tenant_id, []).append(row)
    started = 0
    for rows in by_tenant.values():
        tenant = rows[0].tenant
        with schema_context(tenant.schema_name):
            started += sum(_start(tenant, row) for row in rows)
    return started


def _start(tenant: Tenant, row: ScheduledCampaign) -> bool:
    campaign = Campaign.objects.filter(pk=row.campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.SCHEDULED:
        indexes.unindex_scheduled(tenant.pk, row.campaign_id)  # gone, or moved on by hand
        return False
    try:
        transition_to(operator_principal(tenant), campaign, "start", reason=START_REASON)
    except DomainError as exc:
        # Kept in the index: the next run tries again (a status change holding the row).
        log.warning("campaign %s/%s did not start: %s", tenant.slug, campaign.pk, exc)
        return False
    return True
