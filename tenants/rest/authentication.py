"""How an API request says who it is: a tenant API key, or the dashboard's own session."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from tenants import signals
from tenants.models import ApiKey, Tenant
from tenants.services.access import principal_for_api_key
from tenants.services.apikeys import authenticate_api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer pm_...`. A key works only on its own tenant's host.

    On success `request.auth` is the ApiKey and `request.principal` acts with the key's role.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; use `Authorization: Bearer <key>`."
            )
        tenant = getattr(request._request, "tenant", None)
        key = authenticate_api_key(parts[1])
        # One message for unknown, revoked and other-tenant keys: a caller learns nothing about
        # which keys exist where.
        if key is None or tenant is None or key.tenant_id != tenant.pk:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        # A valid key of a workspace whose plan lost API access: 402 naming the plan that has it.
        signals.api_access_requested.send(sender=Tenant, tenant=tenant)
        request._request.principal = principal_for_api_key(key)  # type: ignore[attr-defined]
        return (key.created_by or KeyUser(key), key)

    def authenticate_header(self, request: Request) -> str:
        # Makes unauthenticated responses 401 with `WWW-Authenticate: Bearer realm="api"`.
        return f'{self.keyword} realm="api"'


class KeyUser:
    """`request.user` for a key whose creator was deleted: authenticated, but nobody."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None
    id = None
    email = ""

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return f"API key {self.key.name}"


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's own calls: the session of an active member of this tenant, with CSRF.

    MembershipMiddleware has already turned a non-member's session into an anonymous user and set
    `request.membership`; this refuses anything without that membership all the same, so the API
    never depends on middleware order for isolation.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)  # enforces CSRF for authenticated sessions
        if result is None:
            return None
        membership = getattr(request._request, "membership", None)
        tenant = getattr(request._request, "tenant", None)
        if (
            membership is None
            or tenant is None
            or membership.tenant_id != tenant.pk
            or membership.user_id != result[0].pk
            or not membership.is_active
        ):
            return None
        return result
