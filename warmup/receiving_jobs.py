"""Job handlers of warm-up's receiving side (docs/warmup.md, "Receiving side"): thin, one
service call each, ids and Message-IDs only in the payloads. Imported by WarmupConfig.ready()
(the registry discovers `warmup.jobs`, the sending side's)."""

from __future__ import annotations

import datetime as dt
import logging

from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant
from warmup import receiving
from warmup.services import receiving as service

log = logging.getLogger(__name__)


@job_handler(
    service.RECEIVE_TASK,
    transient=(receiving.ReceiveFailed,),
    max_attempts=5,
    priority=service.PRIORITY,
    timeout=300,
    tenant_scoped=True,
)
def receive(payload: Payload, context: JobContext) -> None:
    # In the receiving tenant: rescue, read, flag, answer one warm-up message (idempotent).
    report = receiving.receive(
        Tenant.objects.get(pk=context.tenant_id),
        int(payload["mailbox_id"]),
        folder=str(payload["folder"]),
        uidvalidity=int(payload["uidvalidity"]),
        uid=int(payload["uid"]),
        message_id=str(payload["message_id"]),
    )
    log.info("warm-up receive job %s: %s", context.job_id, report)


@job_handler(service.PLACEMENT_TASK, max_attempts=3, priority=service.PRIORITY, tenant_scoped=True)
def placement(payload: Payload, context: JobContext) -> None:
    # In the sending tenant: where its message landed (first sighting wins; spam beats inbox).
    service.record_placement(
        str(payload["message_id"]),
        str(payload["placement"]),
        by_member_id=int(payload["by_member"]),
        at=dt.datetime.fromisoformat(str(payload["at"])),
    )


@job_handler(service.CLEANUP_DUE_TASK, max_attempts=1, priority=service.PRIORITY, timeout=120)
def cleanup_due(payload: Payload, context: JobContext) -> None:
    # Public: one cleanup job per mailbox of the pool's index (no loop over tenant schemas).
    log.info("warm-up cleanup: %s mailboxes", receiving.enqueue_cleanups())


@job_handler(
    service.CLEANUP_TASK,
    transient=(receiving.ReceiveFailed,),
    max_attempts=3,
    priority=service.PRIORITY,
    timeout=600,
    tenant_scoped=True,
)
def cleanup(payload: Payload, context: JobContext) -> None:
    deleted = receiving.cleanup(
        Tenant.objects.get(pk=context.tenant_id), int(payload["mailbox_id"])
    )
    log.info("warm-up cleanup job %s: %s deleted", context.job_id, deleted)
