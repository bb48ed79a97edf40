"""IP addresses: which ones a tenant sends from, quarantine, release, and the seed's emergency
procedure (move a tenant's sending off a quarantined IP onto a clean one)."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.db import transaction

from infrastructure.models import (
    IP_SENDING,
    IpAddress,
    IpRole,
    IpStatus,
    SenderIpBinding,
    VpsInstance,
    VpsStatus,
)
from infrastructure.postfix import RENDER_TASK
from infrastructure.services.states import transition_ip
from penguinmails.errors import IllegalTransition, NotFound, ValidationFailed
from penguinmails.queue.producer import enqueue
from tenants.models import Tenant, User
from tenants.services.audit import record as audit


def sending_ips(tenant: Tenant) -> list[str]:
    """The addresses the tenant's mail goes out from: role sending, status assigned, warming or
    active. SPF lists these and the sending path binds to them; quarantined, released and
    standby IPs are never used."""
    addresses = (
        IpAddress.objects.filter(
            tenant=tenant, role=IpRole.SENDING, status__in=IP_SENDING, address__isnull=False
        )
        .order_by("-is_primary", "id")
        .values_list("address", flat=True)
    )
    return cast(list[str], list(addresses))  # address__isnull=False: no None among them


def sending_ip_names(tenant: Tenant) -> dict[str, str]:
    """Each of `sending_ips(tenant)` (same order) with its reverse DNS name: the host name of the
    mail server that sends from it, which is also its EHLO name and the PTR provisioning sets
    (`ptr_hostname`). The domain's expected PTR records come from here, so the domain page and the
    infrastructure page name the same host. An IP whose PTR is not set yet expects its server's
    host name (what provisioning will set); one with neither, the platform's SENDING_MAIL_HOST."""
    rows = (
        IpAddress.objects.filter(
            tenant=tenant, role=IpRole.SENDING, status__in=IP_SENDING, address__isnull=False
        )
        .order_by("-is_primary", "id")
        .values_list("address", "ptr_set", "ptr_hostname", "vps__hostname")
    )
    return {
        str(address): (ptr if ptr_set and ptr else host) or settings.SENDING_MAIL_HOST
        for address, ptr_set, ptr, host in rows
    }


def request_render(tenant: Tenant) -> None:
    """Re-render the tenant's servers' Postfix overrides (which IP each sender leaves from,
    services.ip_binding) once this transaction commits: a job in the tenant's schema. A tenant
    without servers of its own (shared sending) has nothing to render."""
    if VpsInstance.objects.filter(tenant=tenant).exclude(status=VpsStatus.TERMINATED).exists():
        enqueue(RENDER_TASK, {}, tenant=tenant)


def reverse_dns_names() -> dict[str, str]:
    """Every live address whose PTR is set, with its name (all tenants: the sandbox DNS serves
    them all, docs/dns.md "The sandbox DNS server")."""
    rows = (
        IpAddress.objects.filter(address__isnull=False, ptr_set=True)
        .exclude(status=IpStatus.RELEASED)
        .exclude(ptr_hostname="")
        .order_by("address")
        .values_list("address", "ptr_hostname")
    )
    return {str(address): str(name) for address, name in rows}


def find_ip(address: str) -> IpAddress:
    """The live (not released) row of an address, for commands; NotFound otherwise."""
    ip = (
        IpAddress.objects.select_related("tenant", "vps")
        .filter(address=address)
        .exclude(status=IpStatus.RELEASED)
        .first()
    )
    if ip is None:
        raise NotFound(f"No live IP address {address} is known.")
    return ip


def quarantine_ip(ip: IpAddress, *, reason: str, actor: User | None) -> IpAddress:
    """Take an IP out of sending (blacklisted, complaint spike), with the reason recorded."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Say why the IP is quarantined.", fields={"reason": ["Required."]})
    with transaction.atomic():
        ip = IpAddress.objects.select_for_update().get(pk=ip.pk)
        transition_ip(ip, IpStatus.QUARANTINED, reason=reason)
        IpAddress.objects.filter(pk=ip.pk).update(quarantine_reason=reason[:500])
        ip.quarantine_reason = reason[:500]
        audit("infra.ip_quarantined", tenant=ip.tenant, actor=actor, ip=ip.address, reason=reason)
        request_render(ip.tenant)  # its senders are re-spread over the clean IPs
    return ip


def release_ip(
    ip: IpAddress, *, actor: User | None, reason: str = "released by staff"
) -> IpAddress:
    """Give an IP back: it no longer sends nor counts toward the tenant's IPs."""
    with transaction.atomic():
        ip = IpAddress.objects.select_for_update().get(pk=ip.pk)
        transition_ip(ip, IpStatus.RELEASED, reason=reason)
        IpAddress.objects.filter(pk=ip.pk).update(role=IpRole.STANDBY)
        ip.role = IpRole.STANDBY
        audit("infra.ip_released", tenant=ip.tenant, actor=actor, ip=ip.address, reason=reason)
        request_render(ip.tenant)
    return ip


def migrate_ip(from_ip: IpAddress, to_ip: IpAddress, *, actor: User | None) -> IpAddress:
    """Emergency IP migration (seed, "IP Reputation Crisis"): move the tenant's sending from
    `from_ip` onto the clean `to_ip`.

    `to_ip` must be live and clean (assigned, warming or active; not quarantined) and either the
    same tenant's or a standby spare. It is reassigned to the tenant with role sending and starts
    warming (a new address must build reputation); `from_ip` is quarantined (if not already),
    set to standby and points at its replacement. From then on `sending_ips(tenant)` lists
    `to_ip` and not `from_ip`, the senders bound to `from_ip` are bound to `to_ip`, and the
    servers' Postfix overrides are re-rendered.
    """
    if from_ip.pk == to_ip.pk:
        raise ValidationFailed("Migrating an IP onto itself changes nothing.")
    with transaction.atomic():
        # Locked in id order, so two migrations never deadlock.
        locked = {
            ip.pk: ip
            for ip in IpAddress.objects.select_for_update()
            .select_related("tenant")
            .filter(pk__in=[from_ip.pk, to_ip.pk])
            .order_by("pk")
        }
        source, target = locked[from_ip.pk], locked[to_ip.pk]
        if source.status == IpStatus.RELEASED:
            raise IllegalTransition(f"{source} is released; nothing sends from it.")
        if target.status not in IP_SENDING or not target.address:
            raise IllegalTransition(
                f"{target} is {IpStatus(target.status).label.lower()}: only a clean assigned, "
                "warming or active IP can take over sending."
            )
        if target.tenant_id != source.tenant_id and target.role != IpRole.STANDBY:
            raise IllegalTransition(
                f"{target} sends for another tenant; only a standby spare can be moved across."
            )
        tenant = source.tenant
        if source.status != IpStatus.QUARANTINED:
            transition_ip(source, IpStatus.QUARANTINED, reason=f"sending moved to {target}")
        IpAddress.objects.filter(pk=source.pk).update(role=IpRole.STANDBY, replaced_by=target)
        if target.status == IpStatus.ASSIGNED or target.tenant_id != tenant.pk:
            if target.status != IpStatus.WARMING:
                transition_ip(target, IpStatus.WARMING, reason=f"takes over sending from {source}")
        IpAddress.objects.filter(pk=target.pk).update(tenant=tenant, role=IpRole.SENDING)
        target.tenant, target.role = tenant, IpRole.SENDING
        # Every domain and mailbox that sent from the bad IP now leaves from the clean one.
        SenderIpBinding.objects.filter(ip=source).update(ip=target)
        request_render(tenant)
        audit(
            "infra.ip_migrated",
            tenant=tenant,
            actor=actor,
            from_ip=source.address,
            to_ip=target.address,
        )
    return target
