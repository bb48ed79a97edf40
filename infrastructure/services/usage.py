"""Usage of plan limits that infrastructure owns, for the billing page and API (billing.usage):
dedicated IPs and dedicated servers that are not released or terminated."""

from __future__ import annotations

from infrastructure.models import IpAddress, IpStatus, VpsInstance, VpsStatus
from tenants.models import Tenant


def dedicated_ips_in_use(tenant: Tenant) -> int:
    return IpAddress.objects.filter(tenant=tenant).exclude(status=IpStatus.RELEASED).count()


def servers_in_use(tenant: Tenant) -> int:
    return VpsInstance.objects.filter(tenant=tenant).exclude(status=VpsStatus.TERMINATED).count()
