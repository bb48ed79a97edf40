from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenants.permissions import Level


class IsTenantMember(BasePermission):
    """Authenticated on this tenant's host, by a member session or this tenant's API key.

    A view names its area (`permission_area`); reads need read access, writes need write access.
    """

    message = "Authentication credentials were not provided or do not grant access."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = getattr(request._request, "principal", None)
        if principal is None or getattr(request._request, "tenant", None) is None:
            return False
        area = getattr(view, "permission_area", None)
        if area is None:
            return True
        level = Level.READ if request.method in SAFE_METHODS else Level.WRITE
        if not principal.allows(area, level):
            self.message = (
                f"Your role ({principal.role.name}) does not allow {level.label.lower()} access "
                f"to {area}."
            )
            return False
        return True
