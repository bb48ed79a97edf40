from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class TenantRateThrottle(SimpleRateThrottle):
    """One budget per API key, or per member session, within a tenant (stored in Redis)."""

    scope = "tenant"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = getattr(request._request, "principal", None)
        if principal is None:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        ident = (
            f"key{principal.api_key.pk}"
            if principal.api_key is not None
            else f"user{principal.user.pk}"
        )
        return self.cache_format % {"scope": self.scope, "ident": ident}
