"""The typed view of django-tenants' database connection.

django-tenants ships no type stubs, and `django.db.connection` is typed as Django's
`BaseDatabaseWrapper`, which lacks the schema-switching API that
`django_tenants.postgresql_backend` adds. Code that reads or switches the schema casts the
connection to `TenantConnection` at the use site:

    cast(TenantConnection, connection).set_schema_to_public()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from tenants.models import Tenant


class TenantConnection(Protocol):
    """What django_tenants.postgresql_backend.base.DatabaseWrapper adds to a connection."""

    # A Tenant, or django-tenants' FakeTenant stand-in after set_schema/schema_context.
    tenant: Any
    schema_name: str
    include_public_schema: bool

    def set_tenant(self, tenant: Tenant, include_public: bool = True) -> None: ...

    def set_schema(
        self, schema_name: str, include_public: bool = True, tenant_type: str | None = None
    ) -> None: ...

    def set_schema_to_public(self) -> None: ...

    def get_schema(self) -> str: ...

    def get_tenant(self) -> Any: ...


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
