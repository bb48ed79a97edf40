"""The audit log: append rows (services, the staff admin, support looks) and read one tenant's.

Rows are never changed or deleted (tenants.models.AuditEvent, migration 0003's trigger). Who may
read a tenant's log: roles with write access to Team, that is the owner, admins and custom roles
granted it (they decide who acts in the workspace, so they see what was done); members, viewers
and anyone from another tenant are refused (docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet

from penguinmails.errors import PermissionDenied
from tenants.models import AuditEvent, AuditSource, Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal

# Set while a staff admin view runs (tenants.adminsite.StaffAdminSite.admin_view): the service
# writes it makes (an action calling suspend_tenant, a custom add view) are staff writes too.
_in_staff_admin: ContextVar[bool] = ContextVar("audit_in_staff_admin", default=False)


@contextmanager
def staff_admin_request() -> Iterator[None]:
    token = _in_staff_admin.set(True)
    try:
        yield
    finally:
        _in_staff_admin.reset(token)


def record(
    action: str,
    *,
    tenant: Tenant | None = None,
    actor: User | None = None,
    source: AuditSource | str = AuditSource.APP,  # str: callers may spread **{"from": ...}
    **detail: Any,
) -> AuditEvent:
    """Append an audit row. Never put secrets in `detail`."""
    known = actor if actor is not None and actor.is_authenticated else None
    source = AuditSource(source)  # ValueError for anything but app, admin, support
    if source == AuditSource.APP and _in_staff_admin.get():
        source = AuditSource.ADMIN
    return AuditEvent.objects.create(
        tenant=tenant,
        actor=known,
        actor_email=known.email if known is not None else "",
        source=source,
        action=action,
        detail=detail,
    )


def may_read_log(principal: Principal) -> bool:
    return principal.allows(Area.TEAM, Level.WRITE)


def require_log_access(principal: Principal) -> None:
    # Not access.require(): a suspended workspace's owner still reads its log.
    if not may_read_log(principal):
        raise PermissionDenied(
            f"Your role ({principal.role.name}) cannot see the audit log; the owner and admins can."
        )


@dataclass(frozen=True)
class LogFilter:
    """What the audit page and API narrow the log by (all optional, combined with AND)."""

    actor: str = ""  # an address, matched exactly (case-insensitive), staff included
    action: str = ""  # an action name, or a prefix ending in "." ("campaign.")
    source: str = ""  # an AuditSource value
    since: date | None = None  # first day included (UTC)
    until: date | None = None  # last day included (UTC)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def tenant_log(principal: Principal, filters: LogFilter | None = None) -> QuerySet[AuditEvent]:
    """The principal's tenant's events, newest first, after the access check."""
    require_log_access(principal)
    events = AuditEvent.objects.filter(tenant=principal.tenant)
    f = filters or LogFilter()
    if f.actor:
        events = events.filter(actor_email__iexact=f.actor.strip())
    if f.action:
        prefix = f.action.endswith(".")
        events = events.filter(**{"action__startswith" if prefix else "action": f.action})
    if f.source:
        events = events.filter(source=f.source)
    if f.since is not None:
        events = events.filter(created_at__gte=_day_start(f.since))
    if f.until is not None and f.until < date.max:  # date.max: no day after it, no bound
        events = events.filter(created_at__lt=_day_start(f.until + timedelta(days=1)))
    return events.order_by("-created_at", "-id")


def log_actors(principal: Principal) -> list[str]:
    """Addresses that appear in the tenant's log (the page's actor filter)."""
    require_log_access(principal)
    return sorted(
        set(
            AuditEvent.objects.filter(tenant=principal.tenant)
            .exclude(actor_email="")
            .values_list("actor_email", flat=True)
            .distinct()
        )
    )


def log_actions(principal: Principal) -> list[str]:
    """Action names that appear in the tenant's log (the page's action filter)."""
    require_log_access(principal)
    return sorted(
        set(
            AuditEvent.objects.filter(tenant=principal.tenant)
            .values_list("action", flat=True)
            .distinct()
        )
    )
