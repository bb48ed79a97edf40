"""Stripe webhooks: verify, store once, process on the durable queue; and the nightly
reconciliation that fixes what events missed (docs/billing.md)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import (
    Payment,
    PaymentStatus,
    StripeEvent,
    StripeEventStatus,
    Subscription,
    SubscriptionStatus,
)
from billing.services import stripe_sync
from billing.services.stripe_client import TRANSIENT, client
from penguinmails.alerts import Severity, raise_alert, resolve_alert
from penguinmails.errors import DomainError, ValidationFailed
from penguinmails.queue.producer import enqueue
from penguinmails.states import transition

log = logging.getLogger(__name__)

PROCESS_TASK = "billing.stripe_event"
RECONCILE_TASK = "billing.reconcile"
PAYMENT_ALERT = "billing.payment_failed"
TOLERANCE_SECONDS = 300

HANDLED = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "charge.refunded",
        "charge.dispute.created",
    }
)


class BadSignature(ValidationFailed):
    """A missing, wrong or too old Stripe-Signature (or a body that is not an event)."""

    code = "bad_signature"


def receive(payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify the signature (STRIPE_WEBHOOK_SECRET, 5 minutes' tolerance), then store the event
    once by its id and enqueue its processing in the same transaction. Returns (event, new)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret or not signature:
        raise BadSignature("Missing Stripe-Signature header or webhook secret.")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise BadSignature(f"Invalid Stripe webhook: {exc}") from exc
    data = json.loads(payload)
    del event  # verified; the stored payload is the raw JSON
    event_id, event_type = str(data.get("id") or ""), str(data.get("type") or "")
    if not event_id.startswith("evt_") or not isinstance(data.get("data"), dict):
        raise BadSignature("Not a Stripe event.")
    found = StripeEvent.objects.filter(event_id=event_id).first()
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                event_id=event_id,
                type=event_type[:100],
                created=stripe_sync._when(data.get("created")) or timezone.now(),
                payload=data,
            )
            if event_type in HANDLED:
                _enqueue(row)
            else:
                transition(row, StripeEventStatus.PROCESSED, reason="not handled")
    except IntegrityError:  # a concurrent delivery of the same event stored it first
        return StripeEvent.objects.get(event_id=event_id), False
    return row, True


def _enqueue(row: StripeEvent) -> None:
    enqueue(
        PROCESS_TASK,
        {"event_id": row.pk},
        priority=60,
        idempotency_key=f"stripe-event:{row.event_id}:{row.processed_at or row.received_at}",
    )


@transaction.atomic
def replay(row: StripeEvent, *, actor: Any) -> StripeEvent:
    """Staff: process a stored event again (its handling is idempotent)."""
    row = StripeEvent.objects.select_for_update().get(pk=row.pk)
    if row.status != StripeEventStatus.RECEIVED:
        transition(row, StripeEventStatus.RECEIVED, reason="replay", actor=actor)
    _enqueue(row)
    return row


def process(event_pk: int, *, job_id: int | None = None) -> StripeEvent | None:
    """Handle one stored event. Transient Stripe errors propagate (the job retries); anything
    else marks the event failed with the reason, for staff to look at and replay."""
    row = StripeEvent.objects.filter(pk=event_pk).first()
    if row is None or row.status == StripeEventStatus.PROCESSED:
        return row
    obj: dict[str, Any] = row.payload["data"]["object"]
    try:
        HANDLERS[row.type](obj, row.type, row.created)
    except TRANSIENT:
        raise
    except (DomainError, stripe.StripeError, KeyError, TypeError, ValueError) as exc:
        log.warning("Stripe event %s (%s) failed: %s", row.event_id, row.type, exc)
        if row.status != StripeEventStatus.FAILED:
            transition(
                row,
                StripeEventStatus.FAILED,
                reason=str(exc)[:900],
                actor=job_id,
                error=str(exc)[:2000],
            )
        return row
    transition(
        row, StripeEventStatus.PROCESSED, actor=job_id, processed_at=timezone.now(), error=""
    )
    return row


def _checkout(obj: dict[str, Any], kind: str, at: dt.datetime) -> None:
    customer = stripe_sync._id(obj.get("customer"))
    reference = {"tenant_id": obj.get("client_reference_id")}
    if customer:
        stripe_sync.tenant_for(customer, obj.get("metadata") or reference)
    sub_id = stripe_sync._id(obj.get("subscription"))
    if sub_id:
        stripe_sync.sync_subscription(sub_id, source=kind)


def _subscription(obj: dict[str, Any], kind: str, at: dt.datetime) -> None:
    stripe_sync.sync_subscription(str(obj["id"]), source=kind, fallback=(obj, at))


def _invoice(obj: dict[str, Any], kind: str, at: dt.datetime) -> None:
    payment = stripe_sync.sync_invoice(str(obj["id"]), event_type=kind, fallback=obj)
    _alert(payment, kind)


def _alert(payment: Payment, kind: str) -> None:
    """A failed payment opens the alert engine's billing.payment_failed for its invoice, for staff
    only (no tenant_schema): the tenant is told by the dunning ladder's banner and emails, and a
    second banner on its dashboard would only repeat it. The invoice paid resolves it."""
    subject = f"invoice:{payment.stripe_invoice_id}"
    if kind == "invoice.payment_failed":
        tenant = payment.tenant
        raise_alert(
            PAYMENT_ALERT,
            subject,
            summary=f"{tenant.name} ({tenant.schema_name}): a payment of {payment.amount} "
            f"{payment.currency.upper()} failed. A renewal's failure starts the dunning ladder: "
            "the plan is kept, campaigns pause after the grace period unless it is paid.",
            severity=Severity.CRITICAL,
            detail={
                "payment_id": payment.pk,
                "invoice": payment.stripe_invoice_id,
                "tenant": tenant.schema_name,
            },
        )
    elif kind == "invoice.paid":
        resolve_alert(PAYMENT_ALERT, subject, note="invoice.paid")


def _refund(obj: dict[str, Any], kind: str, at: dt.datetime) -> None:
    if obj.get("refunded"):  # fully refunded; a partial refund leaves the payment paid
        stripe_sync.mark_charge(str(obj["id"]), to=PaymentStatus.REFUNDED, reason=kind)


def _dispute(obj: dict[str, Any], kind: str, at: dt.datetime) -> None:
    charge = stripe_sync._id(obj.get("charge"))
    if charge:
        stripe_sync.mark_charge(charge, to=PaymentStatus.DISPUTED, reason=kind)


Handler = Callable[[dict[str, Any], str, dt.datetime], None]
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout,
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "invoice.paid": _invoice,
    "invoice.payment_failed": _invoice,
    "invoice.payment_action_required": _invoice,
    "charge.refunded": _refund,
    "charge.dispute.created": _dispute,
}


@dataclass(frozen=True)
class Fix:
    subscription: str
    tenant: str
    change: str


def _snapshot(sub: Subscription | None) -> tuple[Any, ...]:
    if sub is None:
        return ()
    return (sub.status, sub.plan_id, sub.stripe_price_id, sub.cancel_at_period_end)


def _describe(before: tuple[Any, ...], sub: Subscription) -> str:
    if not before:
        return f"missing here; recorded as {sub.status} on {sub.plan.slug}"
    parts = []
    if before[0] != sub.status:
        parts.append(f"status {before[0]} -> {sub.status}")
    if before[1] != sub.plan_id:
        parts.append(f"plan -> {sub.plan.slug}")
    if before[3] != sub.cancel_at_period_end:
        parts.append(f"cancel at period end -> {sub.cancel_at_period_end}")
    return ", ".join(parts) or "price changed"


def reconcile() -> list[Fix]:
    """List every subscription at Stripe, copy each, and report what differed. Subscriptions
    we hold as live that Stripe no longer has are canceled here."""
    fixes: list[Fix] = []
    seen: set[str] = set()
    listing = client().v1.subscriptions.list(params={"status": "all", "limit": 100})
    for remote in listing.auto_paging_iter():
        obj = remote.to_dict()
        seen.add(str(obj["id"]))
        local = Subscription.objects.filter(stripe_subscription_id=obj["id"]).first()
        before = _snapshot(local)
        try:
            sub = stripe_sync.apply_subscription(obj, source="reconciliation")
        except stripe_sync.UnknownStripeObject as exc:
            fixes.append(Fix(str(obj["id"]), "?", f"skipped: {exc.message}"))
            continue
        if _snapshot(sub) != before:
            fixes.append(Fix(sub.stripe_subscription_id, sub.tenant.slug, _describe(before, sub)))
    stale = Subscription.objects.exclude(status=SubscriptionStatus.CANCELED).exclude(
        stripe_subscription_id__in=seen
    )
    for sub in stale.select_related("tenant"):
        with transaction.atomic():
            transition(sub, SubscriptionStatus.CANCELED, reason="reconciliation: gone at Stripe")
            stripe_sync.follow_plan(sub.tenant)
        fixes.append(Fix(sub.stripe_subscription_id, sub.tenant.slug, "gone at Stripe: canceled"))
    for fix in fixes:
        log.info("billing reconcile: %s (%s): %s", fix.subscription, fix.tenant, fix.change)
    return fixes
