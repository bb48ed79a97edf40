"""Infrastructure cost for billing's margins (docs/billing.md, "Margins"): each tenant's monthly
cost from the cost records (every server and IP row carries what we pay for it a month), and a
plan's allocation at today's unit costs. Registered into billing.costs by InfrastructureConfig.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from billing.limits import PlanLimits
from infrastructure.models import IpAddress, IpStatus, VpsInstance, VpsStatus
from infrastructure.services.provisioning.ips import IP_MONTHLY_COST_CENTS
from infrastructure.services.provisioning.plan import VPS_MONTHLY_COST_CENTS

# Sending domains are the tenant's own registrations; DNS is theirs or ours at no unit cost.
# Counted in a plan's allocation so that a future per-domain cost shows in the check at once.
DOMAIN_MONTHLY_COST_CENTS = 0


def _live_during(rows: QuerySet, gone: str, start: dt.datetime, end: dt.datetime) -> QuerySet:
    """Rows that existed during [start, end): created before its end and not gone before its
    start (a gone row's last change is when it went). A whole month's cost each: providers bill
    by the month."""
    return rows.filter(created_at__lt=end).filter(~Q(status=gone) | Q(updated_at__gte=start))


def tenant_costs(start: dt.datetime, end: dt.datetime) -> dict[int, dict[str, int]]:
    """{tenant id: {"servers": cents, "ips": cents}} for the month [start, end)."""
    costs: dict[int, dict[str, int]] = {}
    servers = _live_during(VpsInstance.objects.all(), VpsStatus.TERMINATED, start, end)
    for tenant_id, cents in servers.values_list("tenant_id", "monthly_cost_cents"):
        line = costs.setdefault(tenant_id, {"servers": 0, "ips": 0})
        line["servers"] += cents
    ips = _live_during(IpAddress.objects.all(), IpStatus.RELEASED, start, end)
    for tenant_id, cents in ips.values_list("tenant_id", "monthly_cost_cents"):
        line = costs.setdefault(tenant_id, {"servers": 0, "ips": 0})
        line["ips"] += cents
    return costs


def allocation_cost(limits: PlanLimits) -> dict[str, int]:
    """What a plan's allocation costs us a month: its servers, the IPs beyond each server's
    main one (included in the server's price), its sending domains."""
    servers = limits.vps_count
    extra_ips = max(limits.dedicated_ips, servers) - servers if servers else 0
    return {
        "servers": servers * VPS_MONTHLY_COST_CENTS.get(limits.vps_size, 0),
        "ips": extra_ips * IP_MONTHLY_COST_CENTS,
        "domains": limits.sending_domains * DOMAIN_MONTHLY_COST_CENTS,
    }
