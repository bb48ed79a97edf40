"""REST API of campaigns (thin: campaigns.services.campaigns does the work).

/api/v1/campaigns: list, create, retrieve, update/partial update and delete (while a draft);
POST /{id}/schedule|start|pause|resume|complete|archive; POST /{id}/steps (a step with its
variants), DELETE /{id}/steps/{step_id}; POST /api/v1/leads/{id}/replied (stop on reply).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import Campaign, DelayUnit, LeadList, SequenceStep, StepVariant
from campaigns.services import campaigns as svc
from deliverability.models import Mailbox
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.permissions import IsTenantMember
from tenants.rest.viewsets import TenantScopedMixin, TenantScopedViewSet


class VariantSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepVariant
        fields = ["id", "template_id", "weight"]
        read_only_fields = fields


class StepSerializer(serializers.ModelSerializer):
    variants = VariantSerializer(many=True, read_only=True)

    class Meta:
        model = SequenceStep
        fields = ["id", "order", "delay_amount", "delay_unit", "variants"]
        read_only_fields = fields


class CampaignSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)
    lead_list_ids = serializers.SerializerMethodField()
    mailbox_ids = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "timezone",
            "use_lead_timezone",
            "window_days",
            "window_start",
            "window_end",
            "daily_cap",
            "min_gap_seconds",
            "max_gap_seconds",
            "stop_on_reply",
            "delay_on_out_of_office",
            "track_opens",
            "plain_text_only",
            "start_at",
            "lead_list_ids",
            "mailbox_ids",
            "steps",
            "actions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    # .all(), not values_list(): a list reads the ids the viewset prefetched (no query per row).
    def get_lead_list_ids(self, obj: Campaign) -> list[int]:
        return sorted(row.pk for row in obj.lead_lists.all())

    def get_mailbox_ids(self, obj: Campaign) -> list[int]:
        return sorted(row.pk for row in obj.mailboxes.all())

    def get_actions(self, obj: Campaign) -> list[str]:
        return svc.allowed_actions(obj)


class CampaignWriteSerializer(serializers.Serializer):
    """Shapes the input; the service validates the business rules (names, ranges, ids)."""

    name = serializers.CharField(max_length=200)
    timezone = serializers.CharField(max_length=64, required=False)
    use_lead_timezone = serializers.BooleanField(required=False)
    window_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, max_length=7
    )
    window_start = serializers.TimeField(required=False)
    window_end = serializers.TimeField(required=False)
    daily_cap = serializers.IntegerField(required=False)
    min_gap_seconds = serializers.IntegerField(required=False)
    max_gap_seconds = serializers.IntegerField(required=False)
    stop_on_reply = serializers.BooleanField(required=False)
    delay_on_out_of_office = serializers.BooleanField(required=False)
    track_opens = serializers.BooleanField(required=False)
    plain_text_only = serializers.BooleanField(required=False)
    start_at = serializers.DateTimeField(required=False, allow_null=True)
    lead_list_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    mailbox_ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class VariantWriteSerializer(serializers.Serializer):
    template_id = serializers.IntegerField()
    weight = serializers.IntegerField(required=False, default=1)


class StepWriteSerializer(serializers.Serializer):
    delay_amount = serializers.IntegerField(required=False, default=0)
    delay_unit = serializers.ChoiceField(choices=DelayUnit.choices, default=DelayUnit.DAYS)
    variants = VariantWriteSerializer(many=True)


_STATE = extend_schema(request=None, responses={200: CampaignSerializer})


@extend_schema_view(
    create=extend_schema(request=CampaignWriteSerializer, responses={201: CampaignSerializer}),
    update=extend_schema(request=CampaignWriteSerializer, responses={200: CampaignSerializer}),
    partial_update=extend_schema(
        request=CampaignWriteSerializer, responses={200: CampaignSerializer}
    ),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Deleted.")}),
    steps=extend_schema(request=StepWriteSerializer, responses={201: StepSerializer}),
    remove_step=extend_schema(responses={204: OpenApiResponse(description="Removed.")}),
    schedule=_STATE,
    start=_STATE,
    pause=_STATE,
    resume=_STATE,
    complete=_STATE,
    archive=_STATE,
)
class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's campaigns: settings, sequence steps with A/B variants, and status moves."""

    queryset = Campaign.objects.all()
    permission_area = Area.CAMPAIGNS
    serializer_class = CampaignSerializer

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Campaign]:
        # Tenant-schema rows: every row of the table is this tenant's.
        return Campaign.objects.prefetch_related(
            "steps__variants",
            Prefetch("lead_lists", queryset=LeadList.objects.only("pk")),
            Prefetch("mailboxes", queryset=Mailbox.objects.only("pk")),
        )

    def create(self, request: Request) -> Response:
        form = CampaignWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        campaign = svc.create_campaign(self.principal, **form.validated_data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        campaign = self.get_object()
        form = CampaignWriteSerializer(data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        updated = svc.update_campaign(self.principal, campaign, **form.validated_data)
        return Response(CampaignSerializer(svc.access_campaign(self.principal, updated.pk)).data)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        svc.delete_campaign(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def steps(self, request: Request, pk: str | None = None) -> Response:
        campaign = self.get_object()
        form = StepWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        step = svc.add_step(
            self.principal,
            campaign,
            delay_amount=data["delay_amount"],
            delay_unit=data["delay_unit"],
            variants=[(v["template_id"], v["weight"]) for v in data["variants"]],
        )
        return Response(StepSerializer(step).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["delete"], url_path=r"steps/(?P<step_id>\d+)")
    def remove_step(self, request: Request, pk: str | None = None, step_id: str = "") -> Response:
        campaign = self.get_object()
        svc.remove_step(self.principal, svc.access_step(self.principal, campaign, step_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _move(self, name: str) -> Response:
        campaign = svc.transition_to(self.principal, self.get_object(), name)
        return Response(CampaignSerializer(campaign).data)

    @action(detail=True, methods=["post"])
    def schedule(self, request: Request, pk: str | None = None) -> Response:
        return self._move("schedule")

    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        return self._move("start")

    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._move("pause")

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._move("resume")

    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        return self._move("complete")

    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        return self._move("archive")


class LeadRepliedView(TenantScopedMixin, APIView):
    """POST /api/v1/leads/{id}/replied: the lead replied (campaigns with stop on reply stop)."""

    permission_area = Area.CAMPAIGNS
    permission_classes = [IsTenantMember]

    @extend_schema(request=None, responses={200: OpenApiResponse(description="The lead's status.")})
    def post(self, request: Request, lead_id: str) -> Response:
        lead = svc.mark_lead_replied(self.principal, lead_id)
        return Response({"id": lead.pk, "status": lead.status})

    def get_queryset(self) -> Any:  # pragma: no cover - spectacular introspection only
        return Campaign.objects.none()
