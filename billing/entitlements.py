"""Entitlements: the one place that answers "may this tenant have one more X?".

Every path that adds a countable thing (a mailbox, a sending domain, a dedicated IP, a member, a
day's sends) counts what the tenant uses and calls `require_capacity`; yes/no capabilities go
through `require_feature`. A refusal is a `LimitReached` (HTTP 402) whose message names the limit,
the tenant's plan and the cheapest public plan that lifts it.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from billing.ladder import seed_ladder
from billing.limits import SINGULAR, Feature, PlanLimits, Resource
from billing.models import Plan, TenantPlan
from penguinmails.errors import DomainError
from tenants.models import Invitation, InvitationStatus, Membership, Tenant

__all__ = [
    "Feature",
    "LimitReached",
    "PlanLimits",
    "Resource",
    "daily_send_limit",
    "default_plan",
    "limits_for",
    "lock_usage",
    "members_in_use",
    "plan_for",
    "require_capacity",
    "require_feature",
    "upgrade_for",
]


class LimitReached(DomainError):
    """The tenant's plan does not allow this; upgrading would.

    402 Payment Required rather than 403: the caller is allowed to do this in principle, the
    workspace has to pay for more of it. Clients can tell "upgrade" apart from "not permitted".
    """

    status_code = 402
    code = "limit_reached"


def default_plan() -> Plan:
    """The entry plan: the first public plan of the ladder."""
    plan = Plan.objects.filter(is_public=True).order_by("sort_order", "pk").first()
    if plan is None and not Plan.objects.exists():
        # A database flushed by a test (or built without data migrations) has no plans at all;
        # every tenant must still have one, so put the seeded ladder back.
        seed_ladder(Plan)
        plan = Plan.objects.filter(is_public=True).order_by("sort_order", "pk").first()
    if plan is None:
        # The ladder is seeded by a migration; no public plan means the data was tampered with.
        raise ImproperlyConfigured("No public plan exists; run migrations or add one in the admin.")
    return plan


def plan_for(tenant: Tenant) -> Plan:
    """The tenant's current plan; every tenant has one (the default when none was assigned)."""
    row = TenantPlan.objects.select_related("plan").filter(tenant_id=tenant.pk).first()
    return row.plan if row is not None else default_plan()


def limits_for(tenant: Tenant) -> PlanLimits:
    return plan_for(tenant).parsed_limits


def daily_send_limit(tenant: Tenant) -> int:
    """The plan's daily sends, shared by all the tenant's mailboxes (counted per UTC day).
    Read by deliverability's allowance, the one answer to "how much may this mailbox send"."""
    return limits_for(tenant).count(Resource.DAILY_SENDS)


def _ladder() -> list[Plan]:
    return list(Plan.objects.filter(is_public=True).order_by("monthly_price", "sort_order", "pk"))


def upgrade_for(
    current: Plan, *, resource: Resource | None = None, needed: int = 0, feature: str = ""
) -> Plan | None:
    """The cheapest public plan other than `current` that allows `needed` of `resource` (or has
    `feature`)."""
    for plan in _ladder():
        if plan.pk == current.pk:
            continue
        limits = plan.parsed_limits
        if resource is not None and limits.count(resource) >= needed:
            return plan
        if feature and limits.has(feature):
            return plan
    return None


def _count(n: int, resource: Resource) -> str:
    return f"{n:,} {SINGULAR[resource] if n == 1 else resource.label}"


def require_capacity(tenant: Tenant, resource: Resource, *, in_use: int, adding: int = 1) -> None:
    """Refuse with LimitReached unless `in_use + adding` fits the tenant's plan."""
    resource = Resource(resource)
    plan = plan_for(tenant)
    allowed = plan.parsed_limits.count(resource)
    needed = in_use + adding
    if needed <= allowed:
        return
    used = "sent today" if resource == Resource.DAILY_SENDS else "in use"
    if allowed == 0:
        message = f"Your {plan.name} plan includes no {resource.label}."
    else:
        message = f"Your {plan.name} plan allows {_count(allowed, resource)} ({in_use:,} {used})."
    upgrade = upgrade_for(plan, resource=resource, needed=needed)
    if upgrade is not None:
        message += (
            f" Upgrade to {upgrade.name} for up to "
            f"{_count(upgrade.parsed_limits.count(resource), resource)}."
        )
    else:
        message += " No plan allows more; contact support for a custom plan."
    raise LimitReached(message)


def require_feature(tenant: Tenant, feature: Feature | str) -> None:
    """Refuse with LimitReached unless the tenant's plan includes `feature` ("warmup",
    "api_access")."""
    feature = Feature(feature)
    plan = plan_for(tenant)
    if plan.parsed_limits.has(feature):
        return
    message = f"Your {plan.name} plan does not include {feature.label}."
    upgrade = upgrade_for(plan, feature=feature)
    if upgrade is not None:
        message += f" Upgrade to {upgrade.name} to get it."
    raise LimitReached(message)


def lock_usage(tenant: Tenant) -> None:
    """Lock the tenant's row until the transaction ends, so two requests adding the last X at
    once cannot both pass `require_capacity`. Call inside `transaction.atomic`, before counting."""
    list(Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk", flat=True))


def members_in_use(tenant: Tenant, *, lock: bool = False) -> int:
    """Seats taken: active members plus invitations still pending (each may become a member).
    With `lock`, counts under `lock_usage`."""
    if lock:
        lock_usage(tenant)
    members = Membership.objects.filter(tenant_id=tenant.pk, is_active=True).count()
    pending = Invitation.objects.filter(
        tenant_id=tenant.pk, status=InvitationStatus.PENDING, expires_at__gt=timezone.now()
    ).count()
    return members + pending
