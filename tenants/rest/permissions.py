"""The API's permission rule: a principal of this tenant, with access to the view's area."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from penguinmails.errors import TenantSuspended
from tenants.permissions import Level
from tenants.services.access import require


class IsTenantMember(BasePermission):
    """Authenticated on this tenant's host, by a member session or this tenant's API key.

    Every view declares `permission_area` (an Area, or None for "any member"): safe methods need
    read access to it, every other method write access. Writes in a suspended tenant are refused
    with 423 whatever the area. The checks are `tenants.services.access.require`, the same the
    services run, so a refusal reads the same in the API, the dashboard and commands.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = getattr(request._request, "principal", None)
        tenant = getattr(request._request, "tenant", None)
        if principal is None or tenant is None or principal.tenant.pk != tenant.pk:
            return False  # DRF answers 401 (with WWW-Authenticate) when nobody authenticated
        if not hasattr(view, "permission_area"):
            raise ImproperlyConfigured(f"{type(view).__name__} must declare permission_area.")
        safe = request.method in SAFE_METHODS
        area = view.permission_area
        if area is not None:
            require(principal, area, Level.READ if safe else Level.WRITE)
        elif not safe and principal.tenant.is_suspended:
            raise TenantSuspended(
                "This workspace is suspended; changes are refused. "
                "Contact support to reactivate it."
            )
        return True
