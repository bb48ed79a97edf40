"""Plan changes and the usage summary shown on the billing page and API.

Staff change a tenant's plan through the admin or `manage.py plans assign`. Until Stripe checkout
exists (the billing issue), a workspace's owner or admin also chooses its own public plan on the
billing page or by API (`choose_plan`), as long as no payment provider is configured. All of them
call `change_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.entitlements import lock_usage, members_in_use, plan_for
from billing.limits import Resource
from billing.models import Plan, TenantPlan
from billing.usage import SERVERS, counted_usage
from penguinmails.analytics_events import capture
from penguinmails.errors import Conflict, NotFound, ValidationFailed
from tenants.models import Tenant, User
from tenants.permissions import Area, Level
from tenants.services import audit
from tenants.services.access import Principal, require


class CheckoutUnavailable(Conflict):
    """A payment provider is configured: a plan is not chosen without paying; the change goes
    through Stripe (billing page "Subscribe/Change plan", billing.services.stripe_billing)."""

    code = "checkout_unavailable"


@dataclass(frozen=True)
class UsageLine:
    """One countable limit of the tenant's plan; `in_use` is None where it is not counted."""

    resource: str
    label: str
    limit: int
    in_use: int | None

    @property
    def excess(self) -> int:
        """How many to remove to be within the limit."""
        return max(0, (self.in_use or 0) - self.limit)


def usage_for(tenant: Tenant) -> list[UsageLine]:
    """The plan's countable limits with what the tenant uses.

    Members are counted here; mailboxes, domains, daily sends, IPs and servers by the apps that
    own them (billing.usage counters, registered at start-up).
    """
    limits = plan_for(tenant).parsed_limits
    counted: dict[str, int] = {Resource.MEMBERS: members_in_use(tenant), **counted_usage(tenant)}
    lines = [
        UsageLine(
            resource=resource.value,
            label=resource.label,
            limit=limits.count(resource),
            in_use=counted.get(resource.value),
        )
        for resource in Resource
    ]
    lines.append(
        UsageLine(
            resource=SERVERS,
            label="dedicated servers",
            limit=limits.vps_count,
            in_use=counted.get(SERVERS),
        )
    )
    return lines


def over_limits(tenant: Tenant) -> list[UsageLine]:
    """The countable limits the tenant is above (after a downgrade): nothing is deleted, new ones
    are refused until it is under; the billing page and API show what to remove."""
    return [
        line
        for line in usage_for(tenant)
        if line.in_use is not None
        and line.in_use > line.limit
        and line.resource != Resource.DAILY_SENDS  # resets at midnight UTC: nothing to remove
    ]


def self_serve_available() -> bool:
    """Whether a workspace may pick its own plan without paying: only while no payment provider
    is set up (with Stripe configured a plan change goes through Stripe Checkout)."""
    return not settings.STRIPE_SECRET_KEY


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
    capture("plan changed", tenant, {"from_plan": current.slug, "to_plan": plan.slug})
    return assignment


def choose_plan(principal: Principal, *, plan: str) -> TenantPlan:
    """The workspace picks its own public plan (billing:write: owners and admins).

    Bad or unknown input is a ValidationFailed on `plan`; with a payment provider configured the
    choice is refused with CheckoutUnavailable: it goes through Stripe.
    """
    require(principal, Area.BILLING, Level.WRITE)
    if not self_serve_available():
        raise CheckoutUnavailable(
            "Plan changes are paid for through Stripe: use Subscribe / Change plan on the "
            "billing page."
        )
    chosen = Plan.objects.filter(is_public=True, slug=str(plan or "").strip()).first()
    if chosen is None:
        raise ValidationFailed("Invalid input.", fields={"plan": ["Choose one of the plans."]})
    if plan_for(principal.tenant).pk == chosen.pk:
        message = f"You are already on the {chosen.name} plan."
        raise ValidationFailed(message, fields={"plan": [message]})
    return change_plan(principal.tenant, plan=chosen, actor=principal.user)
