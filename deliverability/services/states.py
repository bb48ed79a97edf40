"""The domain verification moves, through the one state-machine helper (`penguinmails.states`)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from deliverability.models import DOMAIN_STATES, DomainStatus, SendingDomain
from penguinmails import states
from penguinmails.analytics_events import analytics_enabled, capture
from tenants.models import Tenant


def can_move(from_: str, to: str) -> bool:
    return DOMAIN_STATES.allows(from_, to)


def transition(
    domain: SendingDomain, to: DomainStatus, *, reason: str = "", job_id: int | None = None
) -> SendingDomain:
    """Move `domain` from the status it was read in to `to` (logged, with the check's job as
    actor), stamping when it first verified or broke. Of two concurrent movers only one wins;
    the loser gets IllegalTransition instead of overwriting a move it never saw."""
    fields: dict[str, Any] = {}
    now = timezone.now()
    if to == DomainStatus.VERIFIED:
        fields["flagged_at"] = None
        if domain.verified_at is None:
            fields["verified_at"] = now
    elif to == DomainStatus.FAILING:
        fields["flagged_at"] = now
    moved = states.transition(domain, to, reason=reason[:500], actor=job_id, **fields)
    if "verified_at" in fields:
        _verified_first_time()
    return moved


def _verified_first_time() -> None:
    """Product analytics: a workspace's sending domain verified for the first time."""
    if not analytics_enabled():
        return
    schema = getattr(connection, "schema_name", "")  # django-tenants' wrapper sets it
    tenant = Tenant.objects.filter(schema_name=schema).first() if schema else None
    if tenant is not None:
        capture("domain verified", tenant)
