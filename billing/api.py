"""Billing API: the workspace's plan with limits and usage, the public plan ladder, and (until
Stripe checkout exists, without a payment provider configured) choosing the workspace's plan.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements import plan_for
from billing.models import Plan
from billing.services.plans import choose_plan, usage_for
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedMixin


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
