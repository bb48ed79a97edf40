"""Job handlers of the inbound poller (docs/inbound.md): thin, one service call each, ids only in
the payload. Imported by deliverability/jobs/__init__.py."""

from __future__ import annotations

import logging

from deliverability.services import imap_reader
from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant

log = logging.getLogger(__name__)


@job_handler(imap_reader.POLL_DUE_TASK, max_attempts=1, priority=30, timeout=60)
def poll_due(payload: Payload, context: JobContext) -> None:
    # Public: reads the index of mailboxes to poll, enqueues one poll job per due mailbox.
    imap_reader.enqueue_due()


@job_handler(imap_reader.POLL_TASK, max_attempts=3, priority=60, timeout=600, tenant_scoped=True)
def poll(payload: Payload, context: JobContext) -> None:
    # A re-run acts on nothing twice: messages are stored once and acted on once (their state).
    report = imap_reader.poll_mailbox(
        Tenant.objects.get(pk=context.tenant_id), int(payload["mailbox_id"])
    )
    log.info("inbound poll job %s: %s", context.job_id, report)
