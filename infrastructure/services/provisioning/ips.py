"""A server's IPs: the network step (main and secondary IPs, PTR records) and picking up IPs
staff ordered at the provider (`discover_ips`, the periodic `discover_awaiting_ips`).
"""

from __future__ import annotations

import logging

from django.db import transaction

from infrastructure.models import IpAddress, IpStatus, VpsInstance, VpsStatus
from infrastructure.providers import NotSupported, ProviderError
from infrastructure.services.ips import request_render
from infrastructure.services.provisioning.steps import CHECK_TASK, _next, _provider_for
from infrastructure.services.states import transition_ip, transition_vps
from tenants.models import User
from tenants.services.audit import record as audit

logger = logging.getLogger(__name__)

DISCOVER_TASK = "infra.discover_awaiting_ips"
# Monthly cost of one extra IPv4, in cents: what we pay the provider (Hostwinds list price,
# USD), recorded per row like plan.VPS_MONTHLY_COST_CENTS.
IP_MONTHLY_COST_CENTS = 400


def step_network(vps: VpsInstance, job_id: int | None) -> None:
    """network → mail_server_check: the main IP, secondary IPs up to the quota, PTR records."""
    provider = _provider_for(vps)
    info = provider.get_server(vps.provider_id)
    ips = list(IpAddress.objects.filter(vps=vps).exclude(status=IpStatus.RELEASED))
    known = {ip.address for ip in ips if ip.address}
    if info.main_ip and info.main_ip not in known:
        ips.append(_new_ip(vps, info.main_ip, primary=True))
        known.add(info.main_ip)
    # IPs that appeared at the provider (ordered earlier, or by staff in its portal).
    for address in info.secondary_ips:
        if address not in known:
            ips.append(_discovered(vps, address))
            known.add(address)
    while len(ips) < vps.ip_quota:
        try:
            added = provider.add_secondary_ip(vps.provider_id)
        except NotSupported as exc:
            ips.append(_awaiting(vps, reason=str(exc)))
            continue
        if added is None:
            ips.append(_awaiting(vps, reason="ordered; will appear at the provider", ordered=True))
        else:
            ips.append(_new_ip(vps, added, primary=False))
    for ip in ips:
        if ip.address and not ip.ptr_set and ip.status != IpStatus.QUARANTINED:
            provider.set_reverse_dns(vps.provider_id, ip.address, vps.hostname)
            IpAddress.objects.filter(pk=ip.pk).update(ptr_hostname=vps.hostname, ptr_set=True)
    waiting = sum(1 for ip in ips if not ip.address)
    reason = f"{len(ips) - waiting} IP(s) with PTR {vps.hostname}"
    if waiting:
        reason += f"; {waiting} awaiting order"
    with transaction.atomic():
        transition_vps(vps, VpsStatus.MAIL_SERVER_CHECK, reason=reason, job_id=job_id)
        _next(vps, CHECK_TASK)
        request_render(vps.tenant)  # bind the tenant's domains to the new IPs


def _new_ip(vps: VpsInstance, address: str, *, primary: bool) -> IpAddress:
    with transaction.atomic():
        ip = IpAddress.objects.create(
            vps=vps,
            tenant=vps.tenant,
            address=address,
            is_primary=primary,
            # The main IP comes with the server; extra ones are billed.
            monthly_cost_cents=0 if primary else IP_MONTHLY_COST_CENTS,
        )
        transition_ip(ip, IpStatus.ASSIGNED, reason="on the server")
    return ip


def _awaiting(vps: VpsInstance, *, reason: str, ordered: bool = False) -> IpAddress:
    with transaction.atomic():
        ip = IpAddress.objects.create(
            vps=vps, tenant=vps.tenant, monthly_cost_cents=IP_MONTHLY_COST_CENTS
        )
        if not ordered:
            transition_ip(ip, IpStatus.AWAITING_ORDER, reason=reason)
    return ip


def _discovered(vps: VpsInstance, address: str) -> IpAddress:
    """An address that appeared at the provider: fills the oldest IP waiting for one."""
    with transaction.atomic():
        waiting = (
            IpAddress.objects.select_for_update()
            .filter(vps=vps, address__isnull=True)
            .exclude(status=IpStatus.RELEASED)
            .order_by("id")
            .first()
        )
        if waiting is None:
            return _new_ip(vps, address, primary=False)
        IpAddress.objects.filter(pk=waiting.pk).update(address=address)
        waiting.address = address
        transition_ip(waiting, IpStatus.ASSIGNED, reason="appeared at the provider")
    return waiting


def discover_ips(vps: VpsInstance, *, actor: User | None) -> list[IpAddress]:
    """Pick up IPs staff ordered in the provider's portal (and set their PTR). Staff action."""
    provider = _provider_for(vps)
    info = provider.get_server(vps.provider_id)
    known = set(
        IpAddress.objects.filter(vps=vps, address__isnull=False)
        .exclude(status=IpStatus.RELEASED)
        .values_list("address", flat=True)
    )
    found = [_discovered(vps, a) for a in info.secondary_ips if a not in known]
    for ip in found:
        assert ip.address is not None
        provider.set_reverse_dns(vps.provider_id, ip.address, vps.hostname)
        IpAddress.objects.filter(pk=ip.pk).update(ptr_hostname=vps.hostname, ptr_set=True)
    if found:
        request_render(vps.tenant)
        audit(
            "infra.ips_discovered",
            tenant=vps.tenant,
            actor=actor,
            vps=vps.name,
            ips=[ip.address for ip in found],
        )
    return found


def discover_awaiting_ips() -> int:
    """Periodic: for every live server with an IP still awaiting its order, ask the provider
    whether staff have attached it yet. Reads only the public IP table (no tenant scan); a
    provider that fails for one server does not stop the others. Returns how many appeared."""
    vps_ids = (
        IpAddress.objects.filter(status=IpStatus.AWAITING_ORDER, address__isnull=True)
        .values_list("vps_id", flat=True)
        .distinct()
    )
    found = 0
    for vps in VpsInstance.objects.filter(pk__in=list(vps_ids), status=VpsStatus.ACTIVE):
        try:
            found += len(discover_ips(vps, actor=None))
        except ProviderError as exc:
            logger.warning("IP discovery for %s failed: %s", vps.name, exc)
    return found
