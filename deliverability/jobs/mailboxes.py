"""Job handlers of mailboxes: thin, one service call each, ids only in the payload. Imported by
deliverability/jobs.py, which the queue registry discovers."""

from __future__ import annotations

from deliverability.services import mailboxes
from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant


@job_handler(
    mailboxes.PROVISION_TASK,
    transient=(mailboxes.MailboxProvisionRetry,),
    max_attempts=5,
    priority=40,
    timeout=120,
    tenant_scoped=True,
)
def provision(payload: Payload, context: JobContext) -> None:
    tenant = Tenant.objects.get(pk=context.tenant_id)
    mailboxes.provision_mailbox(payload["mailbox_id"], tenant=tenant)


@job_handler(
    mailboxes.DEPROVISION_TASK,
    transient=(mailboxes.MailboxProvisionRetry,),
    max_attempts=5,
    priority=120,
    timeout=120,
    tenant_scoped=True,
)
def deprovision(payload: Payload, context: JobContext) -> None:
    mailboxes.deprovision_mailbox(payload["address"], mail_server_id=payload["mail_server_id"])
