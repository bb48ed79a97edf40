from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tenants.models import Membership
from tenants.permissions import Area


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The current tenant, the user's membership, and the tenants they can switch to."""
    tenant = getattr(request, "tenant", None)
    membership = getattr(request, "membership", None)
    others: list[Membership] = []
    if membership is not None:
        others = list(
            Membership.objects.select_related("tenant")
            .filter(user=membership.user, is_active=True, tenant__is_template=False)
            .exclude(tenant=tenant)
        )
    return {
        "tenant": tenant,
        "membership": membership,
        "principal": getattr(request, "principal", None),
        "switchable_memberships": others,
        "areas": Area,
    }
