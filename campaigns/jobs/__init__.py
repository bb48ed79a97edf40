"""Job handlers of the campaigns app: thin, one service call each, ids only in the payload."""

from __future__ import annotations

from campaigns.services import lead_import, leads, starts
from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant


@job_handler(leads.IMPORT_TASK, max_attempts=3, priority=60, timeout=3600, tenant_scoped=True)
def import_leads(payload: Payload, context: JobContext) -> None:
    # Resumable: a re-run continues after the last committed batch (see run_import).
    lead_import.run_import(payload["import_id"], tenant=Tenant.objects.get(pk=context.tenant_id))


@job_handler(starts.START_DUE_TASK, max_attempts=1, priority=20, timeout=60)
def start_due(payload: Payload, context: JobContext) -> None:
    # Public: reads the index of scheduled campaigns; each start runs in its tenant's schema.
    starts.start_due()


# Sending and tracking handlers live in their own modules; importing them here registers them.
from campaigns.jobs import counters, protection, sending, tracking  # noqa: E402, F401
