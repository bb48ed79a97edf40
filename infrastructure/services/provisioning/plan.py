"""Asking for servers: the plan's servers provisioned, a failed one retried, servers
deprovisioned or terminated (each enqueues its first step).
"""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from billing.entitlements import LimitReached, limits_for, lock_usage, plan_for
from billing.models import Plan
from infrastructure.models import VpsInstance, VpsStatus
from infrastructure.providers import get_vps_provider
from infrastructure.services.provisioning.steps import (
    CREATE_TASK,
    STEP_MAX_ATTEMPTS,
    TERMINATE_TASK,
    _location,
)
from infrastructure.services.states import transition_vps
from penguinmails.errors import Conflict, IllegalTransition
from penguinmails.models import Job
from penguinmails.queue.producer import enqueue
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

# Monthly cost of a server by plan size, in cents (one extra IPv4: ips.IP_MONTHLY_COST_CENTS):
# what we pay the provider (Hostwinds list prices, USD), recorded per row so margins can be
# checked against the plan price (seed: "infrastructure costs must not exceed subscription
# revenue").
VPS_MONTHLY_COST_CENTS = {"small": 1099, "medium": 2999, "large": 8999}


def _slug_label(tenant: Tenant) -> str:
    # Slugs may hold underscores or capitals; a host label may not.
    label = re.sub(r"[^a-z0-9-]+", "-", tenant.slug.lower()).strip("-")
    return label[:40] or f"t{tenant.pk}"


def _mail_domain() -> str:
    return settings.INFRA_MAIL_DOMAIN or settings.BASE_DOMAIN


def _ip_shares(total: int, servers: int) -> list[int]:
    """Split the plan's dedicated IPs across its servers, each keeping at least its main IP."""
    total = max(total, servers)
    base, extra = divmod(total, servers)
    return [base + (1 if i < extra else 0) for i in range(servers)]


def _upgrade_with_servers(current: Plan) -> Plan | None:
    for plan in Plan.objects.filter(is_public=True).order_by("monthly_price", "sort_order", "pk"):
        if plan.pk != current.pk and plan.parsed_limits.vps_count > 0:
            return plan
    return None


def live_servers(tenant: Tenant) -> QuerySet[VpsInstance]:
    """The tenant's servers that are not terminated (failed ones included: they can be retried)."""
    return VpsInstance.objects.filter(tenant=tenant).exclude(
        status__in=[VpsStatus.TERMINATED, VpsStatus.TERMINATING]
    )


def provision_for(principal: Principal) -> list[VpsInstance]:
    """The dashboard's and API's "Provision": infrastructure:write in the principal's tenant."""
    require(principal, Area.INFRASTRUCTURE, Level.WRITE)
    return provision_infrastructure(principal.tenant, actor=principal.user)


def provision_infrastructure(tenant: Tenant, *, actor: User | None) -> list[VpsInstance]:
    """Create the servers the tenant's plan includes and enqueue their first step.

    Refuses with LimitReached when the plan includes no server (shared sending), and with
    Conflict when every server the plan includes already exists.
    """
    with transaction.atomic():
        lock_usage(tenant)  # two "Provision" clicks at once create one set of servers
        plan = plan_for(tenant)
        limits = limits_for(tenant)
        if limits.vps_count <= 0:
            message = (
                f"Your {plan.name} plan includes no dedicated servers: it sends from shared "
                "servers."
            )
            upgrade = _upgrade_with_servers(plan)
            if upgrade is not None:
                message += (
                    f" Upgrade to {upgrade.name} for {upgrade.parsed_limits.vps_count} "
                    f"dedicated server(s) and {upgrade.parsed_limits.dedicated_ips} "
                    "dedicated IP(s)."
                )
            raise LimitReached(message)
        existing = live_servers(tenant).count()
        missing = limits.vps_count - existing
        if missing <= 0:
            raise Conflict(
                f"{tenant.name} already has the {limits.vps_count} server(s) its {plan.name} "
                "plan includes."
            )
        shares = _ip_shares(limits.dedicated_ips, limits.vps_count)
        provider = get_vps_provider()
        seq = VpsInstance.objects.filter(tenant=tenant).count()
        label = _slug_label(tenant)
        created: list[VpsInstance] = []
        for index in range(existing, limits.vps_count):
            seq += 1
            vps = VpsInstance.objects.create(
                tenant=tenant,
                provider=provider.name,
                name=f"pm-{label}-{seq}",
                hostname=f"mail{seq}.{label}.{_mail_domain()}",
                size=limits.vps_size,
                location=_location(provider),
                ip_quota=shares[index],
                monthly_cost_cents=VPS_MONTHLY_COST_CENTS.get(limits.vps_size, 0),
                # Generated once and kept: a re-run create step sends the same configuration.
                mailu_api_token=secrets.token_urlsafe(32),
                mailu_secret_key=secrets.token_urlsafe(24),
            )
            job = enqueue(
                CREATE_TASK, {"vps_id": vps.pk}, tenant=tenant, max_attempts=STEP_MAX_ATTEMPTS
            )
            VpsInstance.objects.filter(pk=vps.pk).update(step_job_id=job.pk)
            created.append(vps)
        audit(
            "infra.provision",
            tenant=tenant,
            actor=actor,
            plan=plan.slug,
            servers=[v.name for v in created],
            size=limits.vps_size,
        )
    return created


def retry_provisioning(vps: VpsInstance, *, actor: User | None) -> Job:
    """Start a failed VPS over from its first step (which finds its server by name)."""
    with transaction.atomic():
        vps = VpsInstance.objects.select_for_update().get(pk=vps.pk)
        if vps.status != VpsStatus.FAILED:
            raise IllegalTransition(
                f"{vps.name} is {VpsStatus(vps.status).label.lower()}; only a failed server "
                "can be retried."
            )
        transition_vps(vps, VpsStatus.REQUESTED, reason="retry asked")
        VpsInstance.objects.filter(pk=vps.pk).update(last_error="", polls=0)
        job = enqueue(
            CREATE_TASK, {"vps_id": vps.pk}, tenant=vps.tenant, max_attempts=STEP_MAX_ATTEMPTS
        )
        VpsInstance.objects.filter(pk=vps.pk).update(step_job_id=job.pk)
        audit("infra.retry", tenant=vps.tenant, actor=actor, vps=vps.name)
    return job


def deprovision_infrastructure(tenant: Tenant, *, actor: User | None) -> list[VpsInstance]:
    """Terminate every server of the tenant (a job each) and release their IPs."""
    with transaction.atomic():
        servers = list(
            VpsInstance.objects.select_for_update()
            .filter(tenant=tenant)
            .exclude(status__in=[VpsStatus.TERMINATED, VpsStatus.TERMINATING])
        )
        if not servers:
            raise Conflict(f"{tenant.name} has no servers to deprovision.")
        for vps in servers:
            _start_termination(vps, reason="deprovision asked")
        audit("infra.deprovision", tenant=tenant, actor=actor, servers=[v.name for v in servers])
    return servers


def terminate_vps(vps: VpsInstance, *, actor: User | None) -> Job:
    """Terminate one server (staff): the admin's action."""
    with transaction.atomic():
        vps = VpsInstance.objects.select_for_update().get(pk=vps.pk)
        job = _start_termination(vps, reason="terminate asked")
        audit("infra.terminate", tenant=vps.tenant, actor=actor, vps=vps.name)
    return job


def _start_termination(vps: VpsInstance, *, reason: str) -> Job:
    transition_vps(vps, VpsStatus.TERMINATING, reason=reason)
    job = enqueue(
        TERMINATE_TASK, {"vps_id": vps.pk}, tenant=vps.tenant, max_attempts=STEP_MAX_ATTEMPTS
    )
    VpsInstance.objects.filter(pk=vps.pk).update(step_job_id=job.pk)
    return job
