"""Provisioning and deprovisioning a tenant's servers (docs/infrastructure.md, "Provisioning").

`provision_infrastructure` turns the plan (vps_count, vps_size, dedicated_ips) into VpsInstance
rows and enqueues the first step of each. Every step is a job on the durable queue that advances
the VPS one state and enqueues the next:

    requested ─create─► creating ─► waiting_active ─wait (polls)─► configuring ─configure─►
    network ─network─► mail_server_check ─check─► active

A step finds the VPS in the status it expects or does nothing (a step that ran twice, or a stale
job after a retry), so re-running any step is harmless; creation is idempotent by the server's
name at the provider and the provider id is recorded as soon as it is known. A transient provider
or Mailu error is retried with the queue's backoff; a permanent one, or the last attempt of a
transient one, marks the VPS failed with the error shown to staff and the tenant.

Modules: `plan` (`provision_infrastructure`, `retry_provisioning`, `deprovision_infrastructure`,
`terminate_vps`), `steps` (`run_step` and the create, wait, configure and terminate steps),
`ips` (the network step, `discover_ips`, `discover_awaiting_ips`), `mailserver` (the mail
server check).
"""

from __future__ import annotations

from infrastructure.services.provisioning.ips import (
    DISCOVER_TASK,
    IP_MONTHLY_COST_CENTS,
    discover_awaiting_ips,
    discover_ips,
    step_network,
)
from infrastructure.services.provisioning.mailserver import (
    mailu_api_url,
    step_check_mail_server,
)
from infrastructure.services.provisioning.plan import (
    VPS_MONTHLY_COST_CENTS,
    deprovision_infrastructure,
    live_servers,
    provision_for,
    provision_infrastructure,
    retry_provisioning,
    terminate_vps,
)
from infrastructure.services.provisioning.steps import (
    CHECK_TASK,
    CONFIGURE_TASK,
    CREATE_TASK,
    MAX_ACTIVE_POLLS,
    NETWORK_TASK,
    STEP_MAX_ATTEMPTS,
    TERMINATE_TASK,
    WAIT_TASK,
    StepRetry,
    run_step,
    step_configure,
    step_create,
    step_terminate,
    step_wait_active,
    user_data_for,
)

__all__ = [
    "CHECK_TASK",
    "CONFIGURE_TASK",
    "CREATE_TASK",
    "DISCOVER_TASK",
    "IP_MONTHLY_COST_CENTS",
    "MAX_ACTIVE_POLLS",
    "NETWORK_TASK",
    "STEP_MAX_ATTEMPTS",
    "StepRetry",
    "TERMINATE_TASK",
    "VPS_MONTHLY_COST_CENTS",
    "WAIT_TASK",
    "deprovision_infrastructure",
    "discover_awaiting_ips",
    "discover_ips",
    "live_servers",
    "mailu_api_url",
    "provision_for",
    "provision_infrastructure",
    "retry_provisioning",
    "run_step",
    "step_check_mail_server",
    "step_configure",
    "step_create",
    "step_network",
    "step_terminate",
    "step_wait_active",
    "terminate_vps",
    "user_data_for",
]
