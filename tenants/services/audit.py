from __future__ import annotations

from typing import Any

from tenants.models import AuditEvent, Tenant, User


def record(
    action: str, *, tenant: Tenant | None = None, actor: User | None = None, **detail: Any
) -> AuditEvent:
    """Append an audit row. Never put secrets in `detail`."""
    return AuditEvent.objects.create(
        tenant=tenant,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        detail=detail,
    )
