"""The IPs' `reputation_score`, fed by the reputation monitor (reputation.services.scores), which
sits above infrastructure and calls this owner's bulk write."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from infrastructure.models import IpAddress
from tenants.models import Tenant


def set_reputation_scores(tenant: Tenant, scores: Mapping[int, int]) -> int:
    """Set each of the tenant's IPs' score (IpAddress id -> 0-100); ids of other tenants are
    left alone. Returns how many rows changed."""
    changed = 0
    with transaction.atomic():
        rows = IpAddress.objects.select_for_update().filter(tenant=tenant, pk__in=list(scores))
        for ip in rows:
            value = max(0, min(100, int(scores[ip.pk])))
            if ip.reputation_score != value:
                ip.reputation_score = value
                ip.save(update_fields=["reputation_score", "updated_at"])
                changed += 1
    return changed
