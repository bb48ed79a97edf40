from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from tenants.services.access import active_membership, principal_for_api_key
from tenants.services.apikeys import authenticate_api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer pm_...`. A key works only on its own tenant's host."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        key = authenticate_api_key(parts[1])
        tenant = getattr(request._request, "tenant", None)
        if key is None or tenant is None or key.tenant_id != tenant.pk:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        request._request.principal = principal_for_api_key(key)
        return (key.created_by or _KeyUser(key), key)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class _KeyUser:
    """Stands in for a key whose creator was deleted."""

    is_authenticated = True
    is_active = True
    pk = None
    email = ""

    def __init__(self, key: Any) -> None:
        self.key = key


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's own calls: the session of an active member of this tenant, with CSRF."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        tenant = getattr(request._request, "tenant", None)
        if tenant is None or active_membership(user, tenant) is None:
            return None
        return result
