"""Billing suspension (docs/billing.md, "Dunning"): a tenant whose payment is BILLING_SUSPEND_DAYS
overdue has its servers stopped at the VPS provider; paying starts them again.

Registered into billing's dunning ladder (billing.dunning_hooks) by InfrastructureConfig.ready:
billing sits below infrastructure and cannot call it. Stopping keeps everything: the server, its
IPs (still assigned, still the tenant's), its mail server; nothing is deleted without staff.
Only the servers this stopped are started again.
"""

from __future__ import annotations

import logging

from infrastructure.models import VpsInstance, VpsStatus
from infrastructure.providers import ServerNotFound, get_vps_provider
from infrastructure.services.states import transition_vps
from penguinmails.states import history
from tenants.models import Tenant

log = logging.getLogger(__name__)

REASON = "billing: payment overdue"


def suspend_servers(tenant: Tenant) -> dict[str, list[int]]:
    """Stop every active server of `tenant` at the provider and mark it suspended. A provider
    error propagates (the ladder records it and tries again); servers already stopped stay."""
    provider = get_vps_provider()
    stopped: list[int] = []
    for vps in VpsInstance.objects.filter(tenant=tenant, status=VpsStatus.ACTIVE).order_by("pk"):
        if vps.provider_id:
            provider.stop_server(vps.provider_id)
        transition_vps(vps, VpsStatus.SUSPENDED, reason=REASON)
        stopped.append(vps.pk)
        log.info("billing suspension: %s stopped", vps.name)
    # A step retried after a partial failure: the servers an earlier try stopped count too
    # (suspended for billing by their last move), not those staff suspended for another reason.
    earlier = [
        vps.pk
        for vps in VpsInstance.objects.filter(tenant=tenant, status=VpsStatus.SUSPENDED)
        if _suspended_for_billing(vps)
    ]
    return {"vps": sorted({*stopped, *earlier})}


def _suspended_for_billing(vps: VpsInstance) -> bool:
    last = history(vps, limit=1, newest_first=True)
    return bool(last) and last[0].to_status == VpsStatus.SUSPENDED and last[0].reason == REASON


def resume_servers(tenant: Tenant, record: dict[str, list[int]]) -> dict[str, list[int]]:
    """Start the servers `suspend_servers` stopped (those still suspended), then mark them
    active. A server staff terminated meanwhile is left alone."""
    provider = get_vps_provider()
    started: list[int] = []
    wanted = [int(pk) for pk in record.get("vps", [])]
    rows = VpsInstance.objects.filter(tenant=tenant, pk__in=wanted, status=VpsStatus.SUSPENDED)
    for vps in rows.order_by("pk"):
        if vps.provider_id:
            try:
                provider.start_server(vps.provider_id)
            except ServerNotFound:
                log.warning("billing resume: %s is gone at the provider", vps.name)
                continue
        transition_vps(vps, VpsStatus.ACTIVE, reason="billing: paid")
        started.append(vps.pk)
    return {"vps": started}
