"""The one transition function of each state machine (VPS, IP address)."""

from __future__ import annotations

from infrastructure.models import (
    IP_TRANSITIONS,
    VPS_TRANSITIONS,
    IpAddress,
    IpStatus,
    IpTransition,
    VpsInstance,
    VpsStatus,
    VpsTransition,
)
from penguinmails.errors import IllegalTransition


def vps_can_move(from_: str, to: str) -> bool:
    return to in VPS_TRANSITIONS.get(from_, frozenset())


def ip_can_move(from_: str, to: str) -> bool:
    return to in IP_TRANSITIONS.get(from_, frozenset())


def transition_vps(
    vps: VpsInstance, to: VpsStatus | str, *, reason: str = "", job_id: int | None = None
) -> VpsTransition:
    """Move `vps` from the status it was read in to `to`, with a transition row.

    The status it was read in is part of the UPDATE: of two concurrent movers (a step that ran
    twice) only one wins, the other gets IllegalTransition instead of moving it twice.
    """
    current = vps.status
    if not vps_can_move(current, to):
        raise IllegalTransition(
            f"{vps.name} cannot go from {VpsStatus(current).label.lower()} "
            f"to {VpsStatus(to).label.lower()}."
        )
    if VpsInstance.objects.filter(pk=vps.pk, status=current).update(status=to) == 0:
        raise IllegalTransition(f"{vps.name} changed status meanwhile; reload and retry.")
    vps.status = str(to)
    return VpsTransition.objects.create(
        vps=vps, from_status=current, to_status=to, reason=reason[:1000], job_id=job_id
    )


def transition_ip(ip: IpAddress, to: IpStatus | str, *, reason: str = "") -> IpTransition:
    """Move `ip` from the status it was read in to `to`, with a transition row."""
    current = ip.status
    if not ip_can_move(current, to):
        raise IllegalTransition(
            f"IP {ip} cannot go from {IpStatus(current).label.lower()} "
            f"to {IpStatus(to).label.lower()}."
        )
    if IpAddress.objects.filter(pk=ip.pk, status=current).update(status=to) == 0:
        raise IllegalTransition(f"IP {ip} changed status meanwhile; reload and retry.")
    ip.status = str(to)
    return IpTransition.objects.create(
        ip=ip, from_status=current, to_status=to, reason=reason[:1000]
    )
