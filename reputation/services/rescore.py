"""Asking for a tenant's reputation scores again before the nightly run: a listing that came or
went changes them now, and with them the campaign allowance (docs/reputation.md). Its own module
so the blocklist checks can ask without importing the scoring (which reads their listings)."""

from __future__ import annotations

from penguinmails.queue.producer import enqueue
from tenants.models import Tenant

SCORE_TENANT_TASK = "reputation.score_tenant"


def rescore_key(tenant_id: int) -> str:
    return f"rep-score:{tenant_id}"


def request_rescore(tenant: Tenant) -> None:
    """Enqueue the tenant's scoring job in the caller's transaction (one live job per tenant)."""
    enqueue(SCORE_TENANT_TASK, tenant=tenant, idempotency_key=rescore_key(tenant.pk))
