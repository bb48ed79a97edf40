"""Stripe's state copied into ours: subscriptions (and so the tenant's plan) and payments.

Stripe is the source of truth and its events come late, twice and out of order, so nothing here
trusts arrival order: a subscription is copied from its latest version, fetched from Stripe, and
stamped `as_of`; a version older than the one we hold is ignored. Payments only move along their
state machine (a late `invoice.payment_failed` cannot undo a `paid`).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

import stripe
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import (
    LIVE_SUBSCRIPTION,
    PAYMENT_MACHINE,
    SUBSCRIPTION_MACHINE,
    BillingInterval,
    Payment,
    PaymentStatus,
    Plan,
    StripeCustomer,
    Subscription,
    SubscriptionStatus,
    TenantPlan,
)
from billing.services import dunning
from billing.services.stripe_client import client
from penguinmails.analytics_events import capture
from penguinmails.errors import DomainError
from penguinmails.states import note, transition
from tenants.models import Tenant
from tenants.services import audit

log = logging.getLogger(__name__)

# Stripe's statuses that our machine names otherwise.
_STATUS = {
    "incomplete_expired": SubscriptionStatus.CANCELED,
    "paused": SubscriptionStatus.UNPAID,  # a trial ended without a payment method
}


class UnknownStripeObject(DomainError):
    """A Stripe object we cannot tie to a tenant or a plan: permanent, the event fails."""

    code = "unknown_stripe_object"


def _id(value: Any) -> str:
    """An id whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _when(stamp: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(stamp), tz=dt.UTC) if stamp else None


def tenant_for(customer_id: str, metadata: dict[str, Any] | None = None) -> Tenant:
    row = StripeCustomer.objects.filter(customer_id=customer_id).select_related("tenant").first()
    if row is not None:
        return row.tenant
    tenant_id = str((metadata or {}).get("tenant_id") or "")
    tenant = Tenant.objects.filter(pk=int(tenant_id)).first() if tenant_id.isdigit() else None
    if tenant is None:
        raise UnknownStripeObject(f"Stripe customer {customer_id} belongs to no tenant.")
    StripeCustomer.objects.get_or_create(tenant=tenant, defaults={"customer_id": customer_id})
    return tenant


def plan_for_price(price_id: str) -> tuple[Plan, str]:
    plan = Plan.objects.filter(
        Q(stripe_price_monthly_id=price_id) | Q(stripe_price_yearly_id=price_id)
    ).first()
    if plan is None:
        raise UnknownStripeObject(f"Stripe price {price_id} is no plan's (run plans sync-stripe).")
    interval = (
        BillingInterval.YEAR if plan.stripe_price_yearly_id == price_id else BillingInterval.MONTH
    )
    return plan, interval


def _fields(obj: dict[str, Any]) -> dict[str, Any]:
    item = ((obj.get("items") or {}).get("data") or [{}])[0]
    price_id = _id(item.get("price") or item.get("plan"))
    plan, interval = plan_for_price(price_id)
    # API versions since 2025 carry the period on the item, older ones on the subscription.
    period_end = obj.get("current_period_end") or item.get("current_period_end")
    return {
        "plan": plan,
        "stripe_price_id": price_id,
        "interval": interval,
        "current_period_end": _when(period_end),
        "trial_end": _when(obj.get("trial_end")),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
    }


@transaction.atomic
def apply_subscription(
    obj: dict[str, Any], *, source: str, as_of: dt.datetime | None = None
) -> Subscription:
    """Copy one version of a Stripe subscription; ignore it if we hold a newer one.

    `as_of` is when the version was current: an event's `created`, or now for a fetch.
    """
    as_of = as_of or timezone.now()
    sub_id = str(obj["id"])
    status = _STATUS.get(str(obj.get("status")), str(obj.get("status")))
    if status not in SubscriptionStatus.values:
        raise UnknownStripeObject(f"Stripe subscription {sub_id} has status {status!r}.")
    customer = _id(obj.get("customer"))
    fields = _fields(obj)
    existing = Subscription.objects.select_for_update().filter(stripe_subscription_id=sub_id)
    sub = existing.first()
    if sub is None:
        tenant = tenant_for(customer, obj.get("metadata"))
        sub = Subscription.objects.create(
            tenant=tenant,
            stripe_subscription_id=sub_id,
            stripe_customer_id=customer,
            status=status,
            as_of=as_of,
            **fields,
        )
        note(sub, reason=f"created from Stripe ({source})")
    elif sub.as_of > as_of:
        return sub  # an older version than ours: arrival order means nothing
    else:
        Subscription.objects.filter(pk=sub.pk).update(
            as_of=as_of, updated_at=timezone.now(), **fields
        )
        for name, value in fields.items():
            setattr(sub, name, value)
        sub.as_of = as_of
        if sub.status != status and SUBSCRIPTION_MACHINE.allows(sub.status, status):
            transition(sub, status, reason=f"Stripe: {source}")
    follow_plan(sub.tenant)
    dunning.on_subscription(sub)  # past due: the ladder starts; paid again: restored
    return sub


# An unpaid subscription keeps its plan: the dunning ladder (billing.services.dunning), not the
# plan, decides what an overdue tenant may still do.
PLAN_KEPT = (*LIVE_SUBSCRIPTION, SubscriptionStatus.UNPAID)


def follow_plan(tenant: Tenant) -> None:
    """The tenant's plan follows its live or unpaid subscription (trialing, active, past_due,
    unpaid). With none left (canceled) the tenant is back on the default plan; a tenant that
    never subscribed keeps whatever staff gave it."""
    live = (
        Subscription.objects.filter(tenant=tenant, status__in=PLAN_KEPT)
        .select_related("plan")
        .order_by("-created_at", "-pk")
        .first()
    )
    current = TenantPlan.objects.select_for_update().filter(tenant=tenant).first()
    if live is not None:
        if current is None or current.plan_id != live.plan_id:
            TenantPlan.objects.update_or_create(
                tenant=tenant, defaults={"plan": live.plan, "since": timezone.now()}
            )
            _audit(tenant, current.plan.slug if current else "", live.plan.slug)
    elif current is not None and Subscription.objects.filter(tenant=tenant).exists():
        current.delete()  # back on the default plan (docs/billing.md)
        _audit(tenant, current.plan.slug, "")


def _audit(tenant: Tenant, from_plan: str, to_plan: str) -> None:
    if to_plan:
        event = "plan changed" if from_plan else "plan chosen"
        capture(event, tenant, {"from_plan": from_plan or "default", "to_plan": to_plan})
    audit.record(
        "billing.plan_changed",
        tenant=tenant,
        actor=None,
        from_plan=from_plan or "default",
        to_plan=to_plan or "default",
        via="stripe",  # `source` is the audit row's own (app, admin, support)
    )


def sync_subscription(
    sub_id: str, *, source: str, fallback: tuple[dict[str, Any], dt.datetime] | None = None
) -> Subscription:
    """Fetch the subscription's latest version from Stripe and copy it. If Stripe no longer
    has it, the event's own version (`fallback`: object and the event's time) is used."""
    try:
        remote = client().v1.subscriptions.retrieve(sub_id).to_dict()
    except stripe.InvalidRequestError:
        if fallback is None:
            raise
        return apply_subscription(fallback[0], source=source, as_of=fallback[1])
    return apply_subscription(remote, source=source)


_INVOICE_EVENT_STATUS = {
    "invoice.paid": PaymentStatus.PAID,
    "invoice.payment_succeeded": PaymentStatus.PAID,
    "invoice.payment_failed": PaymentStatus.FAILED,
    "invoice.payment_action_required": PaymentStatus.ACTION_REQUIRED,
}


def invoice_subscription(inv: dict[str, Any]) -> str:
    parent = (inv.get("parent") or {}).get("subscription_details") or {}
    return _id(inv.get("subscription") or parent.get("subscription"))


@transaction.atomic
def record_invoice(inv: dict[str, Any], *, event_type: str) -> Payment:
    """The invoice as a Payment (one per invoice), moved to what the invoice says now."""
    target = PaymentStatus.PAID if inv.get("status") == "paid" else None
    target = target or _INVOICE_EVENT_STATUS.get(event_type, PaymentStatus.OPEN)
    paid = target == PaymentStatus.PAID
    cents = inv.get("amount_paid") if paid else inv.get("amount_due")
    sub = Subscription.objects.filter(stripe_subscription_id=invoice_subscription(inv)).first()
    values = {
        "amount": Decimal(int(cents or inv.get("total") or 0)) / 100,
        "currency": str(inv.get("currency") or "usd")[:3],
        "invoice_url": str(inv.get("hosted_invoice_url") or "")[:1000],
        "stripe_charge_id": _id(inv.get("charge")),
        "stripe_payment_intent_id": _id(inv.get("payment_intent")),
        "subscription": sub,
    }
    payment = Payment.objects.select_for_update().filter(stripe_invoice_id=inv["id"]).first()
    if payment is None:
        tenant = sub.tenant if sub else tenant_for(_id(inv.get("customer")), inv.get("metadata"))
        payment = Payment.objects.create(tenant=tenant, stripe_invoice_id=inv["id"], **values)
        note(payment, reason=f"invoice from Stripe ({event_type})")
    else:
        Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now(), **values)
    if payment.status != target and PAYMENT_MACHINE.allows(payment.status, target):
        reason = f"Stripe: {event_type}"
        if paid:
            paid_at = _when((inv.get("status_transitions") or {}).get("paid_at"))
            transition(payment, target, reason=reason, paid_at=paid_at or timezone.now())
        else:
            transition(payment, target, reason=reason)
        if target == PaymentStatus.ACTION_REQUIRED:
            dunning.note_action_required(payment)
    return payment


def sync_invoice(inv_id: str, *, event_type: str, fallback: dict[str, Any]) -> Payment:
    try:
        inv = client().v1.invoices.retrieve(inv_id).to_dict()
    except stripe.InvalidRequestError:
        inv = fallback
    sub_id = invoice_subscription(inv)
    if sub_id:  # first, so the payment finds its subscription (and its new status shows)
        sync_subscription(sub_id, source=event_type)
    return record_invoice(inv, event_type=event_type)


@transaction.atomic
def mark_charge(charge_id: str, *, to: str, reason: str) -> Payment | None:
    """A refunded or disputed charge moves its payment (found by charge, or by invoice)."""
    payment = Payment.objects.select_for_update().filter(stripe_charge_id=charge_id).first()
    if payment is None:
        try:
            charge = client().v1.charges.retrieve(charge_id).to_dict()
        except stripe.InvalidRequestError:
            return None
        invoice = _id(charge.get("invoice"))
        payment = Payment.objects.select_for_update().filter(stripe_invoice_id=invoice).first()
    if payment is None or not PAYMENT_MACHINE.allows(payment.status, to):
        return payment
    return transition(payment, to, reason=reason)
