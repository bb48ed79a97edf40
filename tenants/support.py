"""Support access: staff look into one tenant's data, read-only, each look audited.

The data lives in apps above tenants, which tenants never imports. Each of them declares panels
in its own `support.py` module (found once by `autodiscover_modules("support")`), with
`register_support_panel(key, title, provider)`. A provider runs inside the tenant's schema and
returns a `SupportPanel`: column names and rows of plain text, a constant number of queries,
no secrets (no passwords, tokens or keys: the page is for seeing what the tenant sees).

`look_into_tenant` is the one way in: it needs a staff user and a stated reason, runs the
panels asked for in a read-only transaction, and appends a `support.look` audit event to the
tenant's own log (source "support"), naming the staff member, the reason and what was viewed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils.module_loading import autodiscover_modules
from django_tenants.utils import schema_context

from penguinmails.errors import PermissionDenied, ValidationFailed
from tenants.models import AuditSource, Tenant, User
from tenants.services.audit import record

SUPPORT_LOOK = "support.look"
MIN_REASON_LENGTH = 10


@dataclass(frozen=True)
class SupportPanel:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class _Registered:
    key: str
    title: str
    provider: Callable[[], SupportPanel]


_panels: dict[str, _Registered] = {}
_discovered: list[bool] = []


def register_support_panel(key: str, title: str, provider: Callable[[], SupportPanel]) -> None:
    """Add a panel (once per key: registering the key again replaces it)."""
    _panels[key] = _Registered(key, title, provider)


def available_panels() -> dict[str, str]:
    """Panel key -> title, in registration order."""
    if not _discovered:
        autodiscover_modules("support")
        _discovered.append(True)
    return {key: panel.title for key, panel in _panels.items()}


@dataclass(frozen=True)
class SupportLook:
    tenant: Tenant
    reason: str
    panels: list[SupportPanel] = field(default_factory=list)


def _check(actor: User, reason: str, keys: list[str]) -> str:
    if not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Only platform staff may look into a tenant's data.")
    reason = " ".join(reason.split())
    errors: dict[str, list[str]] = {}
    if len(reason) < MIN_REASON_LENGTH:
        errors["reason"] = [
            f"Say why you are looking (at least {MIN_REASON_LENGTH} characters): "
            "the tenant reads it in its audit log."
        ]
    unknown = sorted(set(keys) - set(available_panels()))
    if not keys or unknown:
        errors["panels"] = [f"Unknown panels: {', '.join(unknown)}." if unknown else "Pick one."]
    if errors:
        raise ValidationFailed("The look was refused.", fields=errors)
    return reason[:500]


def look_into_tenant(tenant: Tenant, *, actor: User, reason: str, panels: list[str]) -> SupportLook:
    """Read the tenant's data for support, read-only, and record the look in its audit log."""
    reason = _check(actor, reason, panels)
    with transaction.atomic():
        # In public, in the same transaction as the reads: a look is never shown unrecorded.
        record(
            SUPPORT_LOOK,
            tenant=tenant,
            actor=actor,
            source=AuditSource.SUPPORT,
            reason=reason,
            viewed=[_panels[key].title for key in panels],
        )
        with schema_context(tenant.schema_name), transaction.atomic():
            # A savepoint in read-only mode: PostgreSQL refuses any write a provider might
            # attempt; rolling the savepoint back restores read-write for the audit row's commit.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
            shown = [_panels[key].provider() for key in panels]
            transaction.set_rollback(True)
    return SupportLook(tenant=tenant, reason=reason, panels=shown)
