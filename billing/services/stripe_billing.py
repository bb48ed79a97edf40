"""What we ask of Stripe: plans as products and prices, a customer per tenant, Checkout to
subscribe, a prorated subscription update to change plan, the Customer Portal (docs/billing.md).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import stripe
from django.conf import settings
from django.db import transaction

from billing.entitlements import plan_for
from billing.models import (
    LIVE_SUBSCRIPTION,
    BillingInterval,
    Plan,
    StripeCustomer,
    Subscription,
)
from billing.services import stripe_sync
from billing.services.stripe_client import client
from penguinmails.errors import ValidationFailed
from tenants.models import Membership, Tenant
from tenants.permissions import Area, BuiltinRole, Level
from tenants.services.access import Principal, require
from tenants.services.tenancy import tenant_url

log = logging.getLogger(__name__)


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)


def sync_plans(*, report: SyncReport | None = None) -> SyncReport:
    """Every plan as a Stripe product with a monthly and a yearly price. Idempotent: a plan
    whose stored product and prices still match its prices creates nothing; a changed price
    gets a new Stripe price (prices are immutable) and the old one is archived."""
    report = report or SyncReport()
    stripe_client = client()
    for plan in Plan.objects.order_by("sort_order", "pk"):
        product = _ensure_product(stripe_client, plan, report)
        monthly = _ensure_price(
            stripe_client, plan, product, BillingInterval.MONTH, plan.monthly_price, report
        )
        yearly = _ensure_price(
            stripe_client, plan, product, BillingInterval.YEAR, plan.price_per_year, report
        )
        Plan.objects.filter(pk=plan.pk).update(
            stripe_product_id=product,
            stripe_price_monthly_id=monthly,
            stripe_price_yearly_id=yearly,
        )
    return report


def _ensure_product(stripe_client: stripe.StripeClient, plan: Plan, report: SyncReport) -> str:
    if plan.stripe_product_id:
        try:
            found = stripe_client.v1.products.retrieve(plan.stripe_product_id)
        except stripe.InvalidRequestError:
            found = None
        if found is not None:
            report.kept.append(f"product {plan.slug} {found.id}")
            return str(found.id)
    product = stripe_client.v1.products.create(
        params={"name": f"PenguinMails {plan.name}", "metadata": {"plan": plan.slug}},
        options={"idempotency_key": f"plan-{plan.slug}-product-{plan.pk}"},
    )
    report.created.append(f"product {plan.slug} {product.id}")
    return str(product.id)


def _ensure_price(
    stripe_client: stripe.StripeClient,
    plan: Plan,
    product: str,
    interval: str,
    amount: Decimal,
    report: SyncReport,
) -> str:
    stored = plan.stripe_price_monthly_id if interval == "month" else plan.stripe_price_yearly_id
    cents = _cents(amount)
    currency = settings.STRIPE_CURRENCY.lower()
    if stored:
        try:
            price = stripe_client.v1.prices.retrieve(stored)
        except stripe.InvalidRequestError:
            price = None
        if price is not None and _matches(price.to_dict(), product, cents, currency, interval):
            report.kept.append(f"price {plan.slug}/{interval} {stored}")
            return stored
        if price is not None and price.active:
            stripe_client.v1.prices.update(stored, params={"active": False})
            report.archived.append(f"price {plan.slug}/{interval} {stored}")
    created = stripe_client.v1.prices.create(
        params={
            "product": product,
            "unit_amount": cents,
            "currency": currency,
            "recurring": {"interval": interval},
            "lookup_key": f"{plan.slug}-{interval}",
            "metadata": {"plan": plan.slug, "interval": interval},
        },
        options={"idempotency_key": f"plan-{plan.slug}-{interval}-{currency}-{cents}-{product}"},
    )
    report.created.append(f"price {plan.slug}/{interval} {created.id}")
    return str(created.id)


def _matches(price: dict[str, Any], product: str, cents: int, currency: str, interval: str) -> bool:
    recurring = price.get("recurring") or {}
    return bool(
        price.get("active")
        and price.get("product") == product
        and price.get("unit_amount") == cents
        and str(price.get("currency")).lower() == currency
        and recurring.get("interval") == interval
    )


def owner_email(tenant: Tenant) -> str:
    owner = (
        Membership.objects.filter(
            tenant=tenant, is_active=True, role__is_builtin=True, role__slug=BuiltinRole.OWNER
        )
        .select_related("user")
        .order_by("joined_at")
        .first()
    )
    return owner.user.email if owner is not None else ""


def customer_for(tenant: Tenant) -> str:
    """The tenant's Stripe customer id, created the first time (one per tenant: the same
    idempotency key makes two concurrent first calls get one customer)."""
    existing = StripeCustomer.objects.filter(tenant=tenant).first()
    if existing is not None:
        return existing.customer_id
    customer = client().v1.customers.create(
        params={
            "name": tenant.name,
            "email": owner_email(tenant),
            "metadata": {"tenant_id": str(tenant.pk), "tenant_slug": tenant.slug},
        },
        options={"idempotency_key": f"tenant-{tenant.pk}-customer"},
    )
    row, _ = StripeCustomer.objects.get_or_create(
        tenant=tenant, defaults={"customer_id": str(customer.id)}
    )
    return row.customer_id


def live_subscription(tenant: Tenant) -> Subscription | None:
    return (
        Subscription.objects.filter(tenant=tenant, status__in=LIVE_SUBSCRIPTION)
        .select_related("plan")
        .order_by("-created_at", "-pk")
        .first()
    )


@dataclass(frozen=True)
class NextInvoice:
    """Stripe's preview of a subscription's next invoice: what the card will be charged, when."""

    amount: Decimal
    currency: str
    on: dt.datetime | None


def next_invoice(subscription: Subscription) -> NextInvoice | None:
    """The subscription's next invoice as Stripe computes it (prorations and credits of a plan
    change included), or None: a subscription ending at its period's end has none, and when
    Stripe cannot answer now the billing page shows the period's end date alone."""
    if subscription.cancel_at_period_end:
        return None
    params = {
        "customer": subscription.stripe_customer_id,
        "subscription": subscription.stripe_subscription_id,
    }
    try:
        preview = client().v1.invoices.create_preview(params=params).to_dict()  # type: ignore[arg-type]
    except stripe.StripeError as exc:
        log.warning("billing: no next-invoice preview (%s)", type(exc).__name__)
        return None
    when = preview.get("next_payment_attempt") or preview.get("period_end")
    return NextInvoice(
        amount=(Decimal(int(preview.get("amount_due") or 0)) / 100).quantize(Decimal("0.01")),
        currency=str(preview.get("currency") or "usd"),
        on=dt.datetime.fromtimestamp(int(when), tz=dt.UTC) if when else None,
    )


def _chosen(plan: str, interval: str) -> tuple[Plan, str]:
    chosen = Plan.objects.filter(is_public=True, slug=str(plan or "").strip()).first()
    errors: dict[str, list[str]] = {}
    if chosen is None:
        errors["plan"] = ["Choose one of the plans."]
    if interval not in BillingInterval.values:
        errors["interval"] = ["Choose month or year."]
    if errors or chosen is None:
        raise ValidationFailed("Invalid input.", fields=errors)
    price = (
        chosen.stripe_price_monthly_id
        if interval == BillingInterval.MONTH
        else chosen.stripe_price_yearly_id
    )
    if not price:
        message = f"The {chosen.name} plan is not on sale yet (staff: run plans sync-stripe)."
        raise ValidationFailed(message, fields={"plan": [message]})
    return chosen, price


@dataclass(frozen=True)
class CheckoutResult:
    """Where to send the browser: Stripe's Checkout (`url`), or nowhere when the live
    subscription was changed in place (`subscription`, prorated)."""

    url: str | None
    subscription: Subscription | None


def start_checkout(principal: Principal, *, plan: str, interval: str = "month") -> CheckoutResult:
    """Subscribe (a Checkout Session) or, with a live subscription, change its price in place
    with Stripe's proration (an upgrade is charged pro rata at once, a downgrade credited).

    Billing write only. A downgrade below the usage is allowed: nothing is deleted, the tenant
    cannot add more until under the new limits, and the billing page says what to remove.
    """
    require(principal, Area.BILLING, Level.WRITE)
    tenant = principal.tenant
    chosen, price = _chosen(plan, interval)
    current = live_subscription(tenant)
    if current is not None:
        if current.stripe_price_id == price:
            message = f"You are already on the {chosen.name} plan ({interval}ly)."
            raise ValidationFailed(message, fields={"plan": [message]})
        return CheckoutResult(None, _change_price(current, price))
    if plan_for(tenant).pk == chosen.pk and chosen.monthly_price == 0:
        message = f"You are already on the {chosen.name} plan."
        raise ValidationFailed(message, fields={"plan": [message]})
    customer = customer_for(tenant)
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": str(tenant.pk),
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": tenant_url(tenant, "/billing/?checkout=success"),
        "cancel_url": tenant_url(tenant, "/billing/?checkout=canceled"),
        "metadata": {"tenant_id": str(tenant.pk), "plan": chosen.slug},
        "subscription_data": {"metadata": {"tenant_id": str(tenant.pk), "plan": chosen.slug}},
    }
    if chosen.trial_days and not Subscription.objects.filter(tenant=tenant).exists():
        params["subscription_data"]["trial_period_days"] = chosen.trial_days
    session = client().v1.checkout.sessions.create(params=cast(Any, params))
    return CheckoutResult(str(session.url), None)


def _change_price(current: Subscription, price: str) -> Subscription:
    stripe_client = client()
    remote = stripe_client.v1.subscriptions.retrieve(current.stripe_subscription_id)
    item = remote["items"]["data"][0]
    updated = stripe_client.v1.subscriptions.update(
        current.stripe_subscription_id,
        params={
            "items": [{"id": item["id"], "price": price}],
            "proration_behavior": "create_prorations",
        },
    )
    with transaction.atomic():
        return stripe_sync.apply_subscription(updated.to_dict(), source="plan change")


def portal_url(principal: Principal) -> str:
    """A Customer Portal session (cards, invoices, cancellation) returning to the billing page."""
    require(principal, Area.BILLING, Level.WRITE)
    tenant = principal.tenant
    session = client().v1.billing_portal.sessions.create(
        params={"customer": customer_for(tenant), "return_url": tenant_url(tenant, "/billing/")}
    )
    return str(session.url)
