"""Plan changes and the usage summary shown on the billing page and API.

Without Stripe (a later issue) only staff change a tenant's plan, through the admin or
`manage.py plans assign`; both call `change_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing.entitlements import lock_usage, members_in_use, plan_for
from billing.limits import Resource
from billing.models import Plan, TenantPlan
from penguinmails.errors import Conflict, NotFound
from tenants.models import Tenant, User
from tenants.services import audit


@dataclass(frozen=True)
class UsageLine:
    """One countable limit of the tenant's plan; `in_use` is None where it is not counted yet."""

    resource: str
    label: str
    limit: int
    in_use: int | None


def usage_for(tenant: Tenant) -> list[UsageLine]:
    """The plan's countable limits with what the tenant uses.

    Only members are counted here for now: mailboxes, domains, IPs and sends are counted by the
    apps that own them, which call `require_capacity` themselves.
    """
    limits = plan_for(tenant).parsed_limits
    counted = {Resource.MEMBERS: members_in_use(tenant)}
    return [
        UsageLine(
            resource=resource.value,
            label=resource.label,
            limit=limits.count(resource),
            in_use=counted.get(resource),
        )
        for resource in Resource
    ]


def get_plan(slug: str) -> Plan:
    plan = Plan.objects.filter(slug=slug).first()
    if plan is None:
        known = ", ".join(Plan.objects.values_list("slug", flat=True))
        raise NotFound(f"No plan {slug!r}. Known plans: {known}.")
    return plan


def check_plan_change(tenant: Tenant, *, plan: Plan) -> None:
    """Raise Conflict if `tenant` cannot move to `plan` now (same plan, or below its usage).

    Usage is checked where it can be counted from the public schema (members, including pending
    invitations); other limits are enforced when the tenant next adds one.
    """
    if plan_for(tenant).pk == plan.pk:
        raise Conflict(f"{tenant.name} is already on the {plan.name} plan.")
    seats = members_in_use(tenant)
    allowed = plan.parsed_limits.members
    if seats > allowed:
        raise Conflict(
            f"{tenant.name} has {seats} members (including pending invitations); the "
            f"{plan.name} plan allows {allowed}. Remove members or revoke invitations first."
        )


@transaction.atomic
def change_plan(tenant: Tenant, *, plan: Plan, actor: User | None) -> TenantPlan:
    """Put `tenant` on `plan` (audited). Refuses what `check_plan_change` refuses."""
    lock_usage(tenant)
    current = plan_for(tenant)
    check_plan_change(tenant, plan=plan)
    assignment, _ = TenantPlan.objects.update_or_create(
        tenant=tenant, defaults={"plan": plan, "since": timezone.now(), "changed_by": actor}
    )
    audit.record(
        "billing.plan_changed",
        tenant=tenant,
        actor=actor,
        from_plan=current.slug,
        to_plan=plan.slug,
    )
    return assignment
