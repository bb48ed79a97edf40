"""Request rate limits for the API, counted in Redis (the tenant-prefixed cache)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class TenantRateThrottle(SimpleRateThrottle):
    """One budget per API key, or per member session, within a tenant.

    The rate is `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["tenant"]` (env `API_THROTTLE_RATE`),
    read on every request: DRF's own THROTTLE_RATES is frozen when the class is defined, which
    would ignore a setting changed later (tests, or an override per deployment).
    """

    scope = "tenant"

    def get_rate(self) -> str | None:
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        return rates.get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = getattr(request._request, "principal", None)
        if principal is None:
            ident = f"ip:{self.get_ident(request)}"
        elif principal.api_key is not None:
            ident = f"t{principal.tenant.pk}:key:{principal.api_key.pk}"
        else:
            ident = f"t{principal.tenant.pk}:user:{principal.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
