"""OpenAPI extensions: how our authentication classes appear in the schema."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <API key>` as the `ApiKeyAuth` HTTP bearer scheme."""

    target_class = "tenants.rest.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pm_<prefix>_<secret>",
            "description": "A tenant API key, valid only on its own tenant's host.",
        }


class TenantSessionScheme(OpenApiAuthenticationExtension):
    """The dashboard's session cookie (with CSRF), for calls made from the dashboard itself."""

    target_class = "tenants.rest.authentication.TenantSessionAuthentication"
    name = "SessionAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
