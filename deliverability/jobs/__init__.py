"""Job handlers of sending domains: thin, one service call each, ids only in the payload."""

from __future__ import annotations

import datetime as dt

from deliverability.services import domains
from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant


def _tenant(context: JobContext) -> Tenant:
    return Tenant.objects.get(pk=context.tenant_id)


@job_handler(
    domains.PUBLISH_TASK,
    transient=(domains.DnsPublishRetry,),
    max_attempts=5,
    priority=40,
    timeout=120,
    tenant_scoped=True,
)
def publish(payload: Payload, context: JobContext) -> None:
    domains.publish_domain(payload["domain_id"], tenant=_tenant(context))


@job_handler(domains.VERIFY_TASK, max_attempts=3, priority=40, timeout=120, tenant_scoped=True)
def verify(payload: Payload, context: JobContext) -> None:
    due = dt.datetime.fromisoformat(payload["due"]) if payload.get("due") else None
    domains.run_check(payload["domain_id"], tenant=_tenant(context), job_id=context.job_id, due=due)


@job_handler(
    domains.UNPUBLISH_TASK,
    transient=(domains.DnsPublishRetry,),
    max_attempts=5,
    priority=120,
    timeout=120,
    tenant_scoped=True,
)
def unpublish(payload: Payload, context: JobContext) -> None:
    domains.unpublish_records(payload["name"], payload["records"])


# Mailbox handlers live in their own module; importing it here registers them.
from deliverability.jobs import inbound, mailboxes  # noqa: E402, F401
