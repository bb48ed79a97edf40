"""The typed view of django-tenants' database connection.

django-tenants ships no type stubs, and `django.db.connection` is typed as Django's
`BaseDatabaseWrapper`, which lacks the schema-switching API that
`django_tenants.postgresql_backend` adds. Code that reads or switches the schema casts the
connection to `TenantConnection` at the use site:

    cast(TenantConnection, connection).set_schema_to_public()

It lives in the core because the queue's runner switches schemas too; `tenants.db` re-exports it
beside the helpers that know the Tenant model.
"""

from __future__ import annotations

from typing import Any, Protocol


class TenantConnection(Protocol):
    """What django_tenants.postgresql_backend.base.DatabaseWrapper adds to a connection."""

    # A Tenant, or django-tenants' FakeTenant stand-in after set_schema/schema_context.
    tenant: Any
    schema_name: str
    include_public_schema: bool

    # `tenant` is a tenants.models.Tenant; the core names no app, so it is typed loosely here.
    def set_tenant(self, tenant: Any, include_public: bool = True) -> None: ...

    def set_schema(
        self, schema_name: str, include_public: bool = True, tenant_type: str | None = None
    ) -> None: ...

    def set_schema_to_public(self) -> None: ...

    def get_schema(self) -> str: ...

    def get_tenant(self) -> Any: ...
