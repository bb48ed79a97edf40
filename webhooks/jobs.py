"""Job handlers of the webhooks app (found by penguinmails.queue.registry.autodiscover)."""

from __future__ import annotations

from penguinmails.queue.registry import JobContext, Payload, job_handler
from webhooks.services import delivery

# Below the send path's priority: a slow integrator never holds up mail.
PRIORITY = 160


@job_handler(delivery.DELIVER_TASK, priority=PRIORITY, tenant_scoped=True, timeout=60)
def deliver(payload: Payload, context: JobContext) -> None:
    """One attempt of one delivery; the next attempt, if any, is its own job (its schedule is
    the delivery's, WEBHOOK_RETRY_DELAYS, not the queue's retry policy)."""
    delivery_id = int(payload["delivery_id"])
    if delivery.attempt(delivery_id) is None:
        delivery.ensure_scheduled(delivery_id)
