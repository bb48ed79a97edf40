"""The domain verification state machine's one transition function."""

from __future__ import annotations

from django.utils import timezone

from deliverability.models import DOMAIN_TRANSITIONS, DomainStatus, DomainTransition, SendingDomain
from penguinmails.errors import IllegalTransition


def can_move(from_: str, to: str) -> bool:
    return to in DOMAIN_TRANSITIONS.get(from_, frozenset())


def transition(
    domain: SendingDomain, to: DomainStatus, *, reason: str = "", job_id: int | None = None
) -> DomainTransition:
    """Move `domain` from the status it was read in to `to`, with a transition row.

    The status it was read in is part of the UPDATE, so of two concurrent movers only one wins;
    the loser gets IllegalTransition instead of overwriting a move it never saw.
    """
    current = domain.status
    if not can_move(current, to):
        raise IllegalTransition(
            f"{domain.name} cannot go from {DomainStatus(current).label.lower()} "
            f"to {DomainStatus(to).label.lower()}."
        )
    fields: dict[str, object] = {"status": to}
    now = timezone.now()
    if to == DomainStatus.VERIFIED:
        fields["flagged_at"] = None
        if domain.verified_at is None:
            fields["verified_at"] = now
    elif to == DomainStatus.FAILING:
        fields["flagged_at"] = now
    moved = SendingDomain.objects.filter(pk=domain.pk, status=current).update(**fields)
    if moved == 0:
        raise IllegalTransition(f"{domain.name} changed status meanwhile; reload and retry.")
    for name, value in fields.items():
        setattr(domain, name, value)
    return DomainTransition.objects.create(
        domain=domain, from_status=current, to_status=to, reason=reason[:500], job_id=job_id
    )
