"""Cross-host login handoff.

Sessions are per host (and per tenant schema), so moving a user from the public site to a
tenant's host, or from one tenant to another, goes through a one-time token: issued on the
origin host, consumed once within a minute on the target tenant's host, which then starts its own
session there.
"""

from __future__ import annotations

import hashlib
import secrets

from django.core.cache import cache
from django.utils.http import url_has_allowed_host_and_scheme
from django_tenants.utils import schema_context

from tenants.models import Tenant, User
from tenants.services.tenancy import tenant_url

HANDOFF_TTL_SECONDS = 60


def _key(token: str) -> str:
    return "handoff:" + hashlib.sha256(token.encode()).hexdigest()


def issue_handoff(user: User, tenant: Tenant, *, next_path: str = "/") -> str:
    """A URL on the tenant's host that logs `user` in there once, then goes to `next_path`."""
    token = secrets.token_urlsafe(32)
    # Stored under the public schema's cache namespace whatever host issued it.
    with schema_context("public"):
        cache.set(_key(token), (user.pk, tenant.pk, next_path), HANDOFF_TTL_SECONDS)
    return tenant_url(tenant, f"/auth/handoff/{token}/")


def consume_handoff(token: str, tenant: Tenant) -> tuple[User, str] | None:
    """The user and next path for a valid, unused token issued for this tenant; else None."""
    with schema_context("public"):
        value = cache.get(_key(token))
        # delete() returns True for exactly one caller: two racing requests cannot both win.
        if value is None or not cache.delete(_key(token)):
            return None
    user_id, tenant_id, next_path = value
    if tenant_id != tenant.pk:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    # A local path only: browsers read "/\\evil.com" (and "//evil.com") as another host.
    if not next_path.startswith("/") or not url_has_allowed_host_and_scheme(
        next_path, allowed_hosts=None
    ):
        next_path = "/"
    return user, next_path
