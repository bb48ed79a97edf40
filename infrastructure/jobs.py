"""Job handlers of VPS provisioning: thin, one service call each, ids only in the payload.

Each step finds the VPS in the status it handles or does nothing, so a step delivered twice is
harmless (see infrastructure.services.provisioning).
"""

from __future__ import annotations

from collections.abc import Callable

from infrastructure.models import VpsStatus
from infrastructure.postfix import RENDER_TASK
from infrastructure.services import ip_binding, resources
from infrastructure.services import provisioning as p
from penguinmails.queue.registry import JobContext, Payload, job_handler
from tenants.models import Tenant

_OPTIONS: dict[str, object] = {
    "transient": (p.StepRetry,),
    "max_attempts": p.STEP_MAX_ATTEMPTS,
    "priority": 80,
    "timeout": 300,
}


def _handler(
    task: str, step: Callable[..., None], *expected: str
) -> Callable[[Payload, JobContext], None]:
    def handle(payload: Payload, context: JobContext) -> None:
        p.run_step(
            step,
            int(payload["vps_id"]),
            expected=expected,
            job_id=context.job_id,
            attempt=context.attempt,
        )

    handle.__name__ = task.replace(".", "_")
    return job_handler(task, **_OPTIONS)(handle)  # type: ignore[arg-type]


create = _handler(p.CREATE_TASK, p.step_create, VpsStatus.REQUESTED, VpsStatus.CREATING)
wait_active = _handler(p.WAIT_TASK, p.step_wait_active, VpsStatus.WAITING_ACTIVE)
configure = _handler(p.CONFIGURE_TASK, p.step_configure, VpsStatus.CONFIGURING)
network = _handler(p.NETWORK_TASK, p.step_network, VpsStatus.NETWORK)
check_mail_server = _handler(p.CHECK_TASK, p.step_check_mail_server, VpsStatus.MAIL_SERVER_CHECK)
terminate = _handler(p.TERMINATE_TASK, p.step_terminate, VpsStatus.TERMINATING)


@job_handler(p.DISCOVER_TASK, priority=150, max_attempts=1, timeout=600)
def discover_awaiting_ips(payload: Payload, context: JobContext) -> None:
    """Beat enqueues this (penguinmails.schedule): IPs waiting for staff to order them are
    picked up when they appear at the provider."""
    p.discover_awaiting_ips()


@job_handler(RENDER_TASK, priority=90, max_attempts=3, timeout=120)
def render_postfix_overrides(payload: Payload, context: JobContext) -> None:
    """Enqueued by every change of a sending domain or IP: bindings brought up to date and each
    server's Postfix overrides rendered and stored (services.ip_binding)."""
    ip_binding.render_and_store(Tenant.objects.get(pk=context.tenant_id))


@job_handler(resources.DUE_TASK, priority=150, max_attempts=1, timeout=120)
def resources_due(payload: Payload, context: JobContext) -> None:
    """Beat enqueues this every VPS_RESOURCES_INTERVAL_SECONDS: one read per active server,
    spread over the interval."""
    resources.schedule_collection()


@job_handler(resources.COLLECT_TASK, priority=150, max_attempts=1, timeout=60)
def collect_resources(payload: Payload, context: JobContext) -> None:
    """Read one server's CPU, memory and disk; store it; raise or resolve its alert. One try:
    the next interval's read is the retry."""
    resources.collect(int(payload["vps_id"]))
