"""Workspace details a tenant's own admins may change."""

from __future__ import annotations

from django.db import transaction

from penguinmails.errors import ValidationFailed
from tenants.models import Tenant
from tenants.permissions import Area, Level
from tenants.services import audit
from tenants.services.access import Principal, require


@transaction.atomic
def rename_tenant(principal: Principal, *, name: str) -> Tenant:
    """Change the workspace's display name (its slug and host never change here)."""
    require(principal, Area.SETTINGS, Level.WRITE)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed(
            "Invalid workspace name.", fields={"name": ["Use 1 to 200 characters."]}
        )
    tenant = Tenant.objects.select_for_update().get(pk=principal.tenant.pk)
    previous = tenant.name
    if previous == name:
        return tenant
    tenant.name = name
    tenant.save(update_fields=["name", "updated_at"])
    audit.record(
        "tenant.renamed", tenant=tenant, actor=principal.user, **{"from": previous, "to": name}
    )
    return tenant
