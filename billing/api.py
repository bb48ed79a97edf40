"""Billing API: the workspace's plan with limits and usage, the public plan ladder, choosing the
workspace's plan without a payment provider; its Stripe subscription and invoices (payments).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements import plan_for
from billing.models import DunningStage, DunningStep, Payment, Plan, Subscription
from billing.services.dunning import summary_for
from billing.services.plans import choose_plan, over_limits, usage_for
from billing.services.stripe_billing import live_subscription, next_invoice
from billing.services.stripe_client import configured
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedMixin, TenantScopedViewSet


class PlanLimitsSerializer(serializers.Serializer):
    mailboxes = serializers.IntegerField()
    sending_domains = serializers.IntegerField()
    daily_sends = serializers.IntegerField()
    dedicated_ips = serializers.IntegerField()
    members = serializers.IntegerField()
    vps_size = serializers.CharField()
    vps_count = serializers.IntegerField()
    # `warmup` stays out: warm-up is not offered until it is built (a later issue).
    api_access = serializers.BooleanField()


class PlanSerializer(serializers.ModelSerializer):
    limits = PlanLimitsSerializer(source="parsed_limits", read_only=True)

    class Meta:
        model = Plan
        fields = ["slug", "name", "monthly_price", "limits"]


class UsageSerializer(serializers.Serializer):
    resource = serializers.CharField()
    # A declared field, not Field.label: DRF's metaclass moves it into _declared_fields.
    label = serializers.CharField()  # type: ignore[assignment]
    limit = serializers.IntegerField()
    in_use = serializers.IntegerField(allow_null=True, help_text="null where not counted yet")


class CurrentPlanSerializer(serializers.Serializer):
    plan = PlanSerializer()
    since = serializers.DateTimeField(allow_null=True, help_text="null on the default plan")
    usage = UsageSerializer(many=True)


class ChoosePlanSerializer(serializers.Serializer):
    plan = serializers.CharField(max_length=50, help_text="slug of a public plan")


class CurrentPlanView(TenantScopedMixin, APIView):
    """The workspace's plan, its limits and what it uses; POST chooses another public plan
    (billing write; 409 `checkout_unavailable` while a payment provider is configured)."""

    permission_area = Area.BILLING

    @extend_schema(responses=CurrentPlanSerializer, operation_id="plan_current")
    def get(self, request: Request) -> Response:
        return Response(self._current())

    @extend_schema(
        request=ChoosePlanSerializer, responses=CurrentPlanSerializer, operation_id="plan_choose"
    )
    def post(self, request: Request) -> Response:
        serializer = ChoosePlanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        choose_plan(self.principal, plan=serializer.validated_data["plan"])
        return Response(self._current())

    def _current(self) -> Any:
        tenant = self.tenant
        assignment = getattr(tenant, "plan_assignment", None)
        data: dict[str, Any] = {
            "plan": plan_for(tenant),
            "since": assignment.since if assignment is not None else None,
            "usage": usage_for(tenant),
        }
        return CurrentPlanSerializer(data).data


class PlanListView(TenantScopedMixin, APIView):
    """The public plan ladder, cheapest first: what each plan allows."""

    # Any member or key of the workspace may read the price list; it is public anyway.
    permission_area = None

    @extend_schema(responses=PlanSerializer(many=True), operation_id="plans_list")
    def get(self, request: Request) -> Response:
        plans = Plan.objects.filter(is_public=True).order_by("sort_order", "pk")
        return Response(PlanSerializer(plans, many=True).data)


class SubscriptionSerializer(serializers.ModelSerializer):
    plan: serializers.SlugRelatedField[Plan] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = Subscription
        fields = [
            "plan",
            "status",
            "interval",
            "current_period_end",
            "trial_end",
            "cancel_at_period_end",
            "created_at",
        ]


class DunningStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = DunningStep
        fields = ["at", "day", "kind", "summary"]


class DunningSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=DunningStage.choices,
        help_text="clear, grace (still sending), sending_paused, suspended (servers stopped)",
    )
    since = serializers.DateTimeField(allow_null=True, help_text="day 0: the payment failed")
    pay_url = serializers.CharField(allow_blank=True, help_text="the overdue invoice to pay")
    steps = DunningStepSerializer(many=True, help_text="newest first (docs/billing.md)")


class NextInvoiceSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    on = serializers.DateTimeField(allow_null=True, help_text="when Stripe will charge it")


class SubscriptionStateSerializer(serializers.Serializer):
    stripe_configured = serializers.BooleanField()
    plan = serializers.CharField(help_text="the plan the workspace is on now")
    subscription = SubscriptionSerializer(allow_null=True, help_text="null without one")
    next_invoice = NextInvoiceSerializer(
        allow_null=True,
        help_text="Stripe's preview of the live subscription's next invoice; null without one, "
        "when it ends at the period's end, or when Stripe does not answer",
    )
    over_limits = UsageSerializer(many=True, help_text="limits above the plan: what to remove")
    dunning = DunningSerializer(help_text="an overdue payment's grace period and what it stopped")


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "amount", "currency", "status", "paid_at", "invoice_url", "created_at"]


class SubscriptionView(TenantScopedMixin, APIView):
    """The workspace's subscription (the newest; null when it never subscribed), its current
    plan and the limits it is above after a downgrade."""

    permission_area = Area.BILLING

    @extend_schema(responses=SubscriptionStateSerializer, operation_id="billing_subscription")
    def get(self, request: Request) -> Response:
        tenant = self.tenant
        live = live_subscription(tenant)
        sub = live or Subscription.objects.filter(tenant=tenant).first()
        data = {
            "stripe_configured": configured(),
            "plan": plan_for(tenant).slug,
            "subscription": sub,
            "next_invoice": next_invoice(live) if live and configured() else None,
            "over_limits": over_limits(tenant),
            "dunning": self._dunning(),
        }
        return Response(SubscriptionStateSerializer(data).data)

    def _dunning(self) -> dict[str, Any]:
        summary = summary_for(self.tenant)
        return {
            "status": summary.status,
            "since": summary.dunning.since if summary.dunning else None,
            "pay_url": summary.overdue.invoice_url if summary.overdue else "",
            "steps": summary.steps,
        }


class InvoiceViewSet(TenantScopedViewSet, mixins.ListModelMixin):
    """The workspace's payments (one per Stripe invoice), newest first."""

    permission_area = Area.BILLING
    serializer_class = PaymentSerializer
    queryset = Payment.objects.order_by("-created_at", "-pk")
    tenant_field = "tenant"

    @extend_schema(operation_id="billing_invoices")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
