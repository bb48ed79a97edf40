"""The billing banner on every dashboard page: a failed payment's grace period, paused sending
or suspended servers, or a payment the bank wants authenticated (docs/billing.md)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from billing.services.dunning import banner_for


def billing_banner(request: HttpRequest) -> dict[str, Any]:
    tenant = getattr(request, "tenant", None)
    if getattr(request, "membership", None) is None or tenant is None:
        return {}
    return {"billing_banner": banner_for(tenant)}
