"""The VPS and IP moves, through the one state-machine helper (`penguinmails.states`)."""

from __future__ import annotations

from infrastructure.models import IP_STATES, VPS_STATES, IpAddress, IpStatus, VpsInstance, VpsStatus
from penguinmails.states import transition


def vps_can_move(from_: str, to: str) -> bool:
    return VPS_STATES.allows(from_, to)


def ip_can_move(from_: str, to: str) -> bool:
    return IP_STATES.allows(from_, to)


def transition_vps(
    vps: VpsInstance, to: VpsStatus | str, *, reason: str = "", job_id: int | None = None
) -> VpsInstance:
    """Move `vps` from the status it was read in to `to`, logged with the step's job as actor.

    Of two concurrent movers (a step that ran twice) only one wins; the other gets
    IllegalTransition instead of moving it twice.
    """
    return transition(vps, to, reason=reason, actor=job_id)


def transition_ip(ip: IpAddress, to: IpStatus | str, *, reason: str = "") -> IpAddress:
    """Move `ip` from the status it was read in to `to`, logged."""
    return transition(ip, to, reason=reason)
