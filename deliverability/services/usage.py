"""Usage of plan limits that deliverability owns, for the billing page and API (billing.usage):
mailboxes, sending domains and today's sends. Each counts in the tenant's schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from django.db import connection
from django_tenants.utils import schema_context

from deliverability.models import Mailbox, SendingDomain
from deliverability.services import allowance
from tenants.db import TenantConnection
from tenants.models import Tenant

T = TypeVar("T")


def _in_schema(tenant: Tenant, count: Callable[[], T]) -> T:
    if cast(TenantConnection, connection).schema_name == tenant.schema_name:
        return count()
    with schema_context(tenant.schema_name):
        return count()


def mailboxes_in_use(tenant: Tenant) -> int:
    return _in_schema(tenant, lambda: Mailbox.objects.count())


def domains_in_use(tenant: Tenant) -> int:
    return _in_schema(tenant, lambda: SendingDomain.objects.count())


def sends_today(tenant: Tenant) -> int:
    """Messages sent today from the tenant's mailboxes: the allowance's own count (the plan's
    `plan_sent`, same day and counters), so the billing page and the sender agree."""
    return _in_schema(tenant, allowance.sent_today)
