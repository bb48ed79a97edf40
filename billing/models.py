"""Plans and which plan each tenant is on (public schema).

Stripe subscriptions come in a later issue; until then a tenant's plan is whatever staff (or the
default) set, and plans activate without payment.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from billing.limits import PlanLimits, parse_limits


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
    created_at = models.DateTimeField(default=timezone.now, editable=False)

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
