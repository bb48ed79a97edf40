"""Reading mailboxes: `list_mailboxes`, `access_mailbox` (scoped to the tenant's schema), and
the schema, actor and row-lock helpers the writes share.
"""

from __future__ import annotations

from typing import cast

from django.db import connection
from django.db.models import QuerySet

from deliverability.models import Mailbox
from penguinmails.errors import NotFound
from tenants.db import TenantConnection, require_schema
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require


def _in_schema(tenant: Tenant) -> None:
    require_schema(tenant, "mailbox services")


def _tenant_here() -> Tenant | None:
    """The tenant whose schema this connection is on (system callers: jobs, the pool, commands,
    where `connection.tenant` may be a stand-in rather than the Tenant row)."""
    return Tenant.objects.filter(schema_name=cast(TenantConnection, connection).schema_name).first()


def _actor(principal: Principal | None) -> User | None:
    return principal.user if principal is not None else None


def _email_of(actor: User | None) -> str:
    return actor.email if actor is not None else ""


def _locked(mailbox_id: int) -> Mailbox:
    found = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
    if found is None:
        raise NotFound("No such mailbox.")
    return found


def list_mailboxes(principal: Principal) -> QuerySet[Mailbox]:
    require(principal, Area.MAILBOXES, Level.READ)
    _in_schema(principal.tenant)
    return Mailbox.objects.all()


def access_mailbox(principal: Principal, mailbox_id: int | str) -> Mailbox:
    """One of the principal's tenant's mailboxes, or NotFound (another tenant's ids are unknown
    here: its rows live in another schema)."""
    require(principal, Area.MAILBOXES, Level.READ)
    _in_schema(principal.tenant)
    try:
        found = Mailbox.objects.filter(pk=int(mailbox_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such mailbox.")
    return found
