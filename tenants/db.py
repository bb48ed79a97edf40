"""Schema helpers over django-tenants' connection (its typed view is penguinmails.db, re-exported
here as `TenantConnection` for the apps' use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from penguinmails.db import TenantConnection

if TYPE_CHECKING:
    from tenants.models import Tenant

__all__ = ["TenantConnection", "current_schema", "require_schema"]


def current_schema() -> str:
    """The schema the default connection works in now."""
    from django.db import connection

    return cast(TenantConnection, connection).schema_name


def require_schema(tenant: Tenant, what: str) -> None:
    """Refuse to run `what` (a service's name) anywhere but in `tenant`'s schema: tenant-schema
    rows written from another schema would land in another tenant's (or no) table. A wiring
    error, not a user error, so RuntimeError."""
    schema = current_schema()
    if schema != tenant.schema_name:
        raise RuntimeError(f"{what} for {tenant.slug} ran in schema {schema!r}")
