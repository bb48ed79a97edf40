"""Plans, which plan each tenant is on, and the Stripe records behind it (public schema).

Without Stripe a tenant's plan is whatever staff (or the default) set. With Stripe the tenant's
plan follows its subscription's price (billing.services.stripe_sync); see docs/billing.md.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from billing.limits import PlanLimits, parse_limits
from penguinmails.states import StateMachine


class Plan(models.Model):
    """A subscription tier: its price and the limits/features document that maps it to
    infrastructure (seed: "Subscription-Based Resource Allocation")."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    monthly_price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    limits = models.JSONField(help_text="Limits and features; see billing.limits.PlanLimits.")
    is_public = models.BooleanField(
        default=True, help_text="Shown on the plan ladder; the first public plan is the default."
    )
    sort_order = models.PositiveIntegerField(default=0)
    yearly_price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Empty: ten months' price (two months free).",
    )
    trial_days = models.PositiveIntegerField(default=0, help_text="Free days before billing.")
    # Set by `manage.py plans sync-stripe`; the price ids identify the plan in subscriptions.
    stripe_product_id = models.CharField(max_length=255, blank=True, editable=False)
    stripe_price_monthly_id = models.CharField(max_length=255, blank=True, editable=False)
    stripe_price_yearly_id = models.CharField(max_length=255, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Resource thresholds of the plan's servers (infrastructure.services.resources): a VPS over
    # any of them raises the "infra.vps_resources" alert, which resolves once it is back under.
    cpu_alert_percent = models.PositiveSmallIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    memory_alert_percent = models.PositiveSmallIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    disk_alert_percent = models.PositiveSmallIntegerField(
        default=85, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    class Meta:
        ordering = ["sort_order", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            parse_limits(self.limits)
        except ValueError as exc:
            raise ValidationError({"limits": str(exc)}) from exc

    @property
    def parsed_limits(self) -> PlanLimits:
        return parse_limits(self.limits)

    @property
    def price_per_year(self) -> Decimal:
        return self.yearly_price if self.yearly_price is not None else self.monthly_price * 10


class TenantPlan(models.Model):
    """The plan a tenant is on. A tenant without a row is on the default (entry) plan."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="plan_assignment"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="assignments")
    since = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.tenant} on {self.plan}"


class StripeCustomer(models.Model):
    """The Stripe customer of a tenant, created the first time the tenant goes to Stripe."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="stripe_customer"
    )
    customer_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.tenant} = {self.customer_id}"


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete", "Incomplete"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    CANCELED = "canceled", "Canceled"


# Statuses in which the subscription's plan is the tenant's plan (paid for, or being collected).
LIVE_SUBSCRIPTION = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
)


class BillingInterval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Yearly"


class Subscription(models.Model):
    """Our copy of a Stripe subscription. Stripe is the source of truth: webhooks and the nightly
    reconciliation copy its latest version here (`as_of` keeps an older one from overwriting)."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    stripe_subscription_id = models.CharField(max_length=255, unique=True)
    stripe_customer_id = models.CharField(max_length=255)
    stripe_price_id = models.CharField(max_length=255)
    interval = models.CharField(
        max_length=10, choices=BillingInterval.choices, default=BillingInterval.MONTH
    )
    status = models.CharField(
        max_length=20, choices=SubscriptionStatus.choices, default=SubscriptionStatus.INCOMPLETE
    )
    current_period_end = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # When the Stripe version copied here was current (an event's `created`, or a fetch's time).
    as_of = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "status"], name="billing_sub_tenant_status")]

    def __str__(self) -> str:
        return f"{self.stripe_subscription_id} ({self.tenant}, {self.plan}, {self.status})"


_S = SubscriptionStatus
SUBSCRIPTION_MACHINE = StateMachine(
    Subscription,
    {
        _S.INCOMPLETE: {_S.TRIALING, _S.ACTIVE, _S.PAST_DUE, _S.UNPAID, _S.CANCELED},
        _S.TRIALING: {_S.ACTIVE, _S.PAST_DUE, _S.UNPAID, _S.CANCELED, _S.INCOMPLETE},
        _S.ACTIVE: {_S.TRIALING, _S.PAST_DUE, _S.UNPAID, _S.CANCELED},
        _S.PAST_DUE: {_S.ACTIVE, _S.TRIALING, _S.UNPAID, _S.CANCELED},
        _S.UNPAID: {_S.ACTIVE, _S.TRIALING, _S.PAST_DUE, _S.CANCELED},
        _S.CANCELED: set(),  # Stripe never revives a canceled subscription; a new one starts
    },
)


class PaymentStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    ACTION_REQUIRED = "action_required", "Action required"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"


class Payment(models.Model):
    """One invoice of a tenant's subscription and what became of its payment."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="payments")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    stripe_invoice_id = models.CharField(max_length=255, unique=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.OPEN
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    invoice_url = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.stripe_invoice_id} {self.amount} {self.currency} {self.status}"


_P = PaymentStatus
PAYMENT_MACHINE = StateMachine(
    Payment,
    {
        _P.OPEN: {_P.PAID, _P.FAILED, _P.ACTION_REQUIRED},
        _P.FAILED: {_P.PAID, _P.ACTION_REQUIRED},
        _P.ACTION_REQUIRED: {_P.PAID, _P.FAILED},
        _P.PAID: {_P.REFUNDED, _P.DISPUTED},
        _P.DISPUTED: {_P.PAID, _P.REFUNDED},
        _P.REFUNDED: set(),
    },
)


class StripeEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class StripeEvent(models.Model):
    """A Stripe webhook event, stored once by its id; processed by the `billing.stripe_event`
    job. A redelivery finds the row and does nothing; staff replay it from the admin."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField(help_text="The event's own time at Stripe.")
    payload = models.JSONField()
    status = models.CharField(
        max_length=20, choices=StripeEventStatus.choices, default=StripeEventStatus.RECEIVED
    )
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


_E = StripeEventStatus
STRIPE_EVENT_MACHINE = StateMachine(
    StripeEvent,
    {
        _E.RECEIVED: {_E.PROCESSED, _E.FAILED},
        _E.FAILED: {_E.PROCESSED, _E.RECEIVED},
        _E.PROCESSED: {_E.RECEIVED},  # a staff replay
    },
    quiet=frozenset({(_E.RECEIVED, _E.PROCESSED)}),
)


class DunningStage(models.TextChoices):
    """Where a tenant is on the ladder after a failed payment (docs/billing.md, "Dunning")."""

    CLEAR = "clear", "Paid up"
    GRACE = "grace", "Grace period (still sending)"
    SENDING_PAUSED = "sending_paused", "Sending paused"
    SUSPENDED = "suspended", "Infrastructure suspended"


class Dunning(models.Model):
    """A tenant's place on the dunning ladder: day 0 is when its subscription went past due;
    `billing.dunning_advance` (daily) moves it on, a payment brings it back to clear."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="dunning"
    )
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=20, choices=DunningStage.choices, default=DunningStage.CLEAR, db_index=True
    )
    # Each round of the ladder (a failed payment after a clear) counts one more.
    round = models.PositiveIntegerField(default=0)
    since = models.DateTimeField(null=True, blank=True, help_text="Day 0: the payment failed.")
    last_email_day = models.SmallIntegerField(default=-1)
    # What the apps above billing stopped, handed back to them on restore (only those).
    stopped = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.tenant}: {self.status}"


_D = DunningStage
DUNNING_MACHINE = StateMachine(
    Dunning,
    {
        _D.CLEAR: {_D.GRACE},
        _D.GRACE: {_D.SENDING_PAUSED, _D.CLEAR},
        _D.SENDING_PAUSED: {_D.SUSPENDED, _D.CLEAR},
        _D.SUSPENDED: {_D.CLEAR},
    },
)


class DunningStepKind(models.TextChoices):
    PAST_DUE = "past_due", "Payment failed: grace period started"
    EMAIL = "email", "Reminder emailed"
    ACTION_REQUIRED = "action_required", "The bank asks to authenticate the payment"
    SENDING_PAUSED = "sending_paused", "Campaign sending paused"
    SUSPENDED = "suspended", "Servers suspended (stopped, IPs kept)"
    RESTORED = "restored", "Paid: everything restored"
    HOOK_FAILED = "hook_failed", "A step could not be completed (retried)"


class DunningStep(models.Model):
    """One step of a tenant's dunning, shown on its billing page and in the admin."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="dunning_steps"
    )
    round = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=DunningStepKind.choices)
    day = models.SmallIntegerField(default=0)
    summary = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "round", "kind", "day"],
                condition=~models.Q(kind="hook_failed"),
                name="billing_dunning_step_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant} day {self.day}: {self.kind}"
