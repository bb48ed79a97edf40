"""REST API of outgoing webhooks (thin: webhooks.services does the work).

/api/v1/webhooks (list, create, retrieve, update, delete), POST /api/v1/webhooks/{id}/test,
GET /api/v1/webhooks/{id}/secret, GET /api/v1/webhooks/{id}/deliveries (newest first, with
each one's attempts), POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/replay. Reads need
read access to settings, writes (and the secret) write access: owners and admins by default.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from penguinmails.errors import NotFound
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet
from webhooks.events import Event
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.services import delivery as delivery_svc
from webhooks.services import endpoints as endpoint_svc


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "status",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointCreatedSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret, shown in full this once.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class EndpointWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="An https URL with a public address.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=Event.choices), allow_empty=False
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField()


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["number", "at", "status_code", "response_excerpt", "error", "duration_ms",
                  "succeeded"]  # fmt: skip
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "endpoint", "event", "event_id", "status", "attempts", "next_attempt_at",
                  "last_status_code", "last_error", "created_at", "completed_at", "payload",
                  "attempt_log"]  # fmt: skip
        read_only_fields = fields


@extend_schema_view(
    create=extend_schema(
        request=EndpointWriteSerializer, responses={201: EndpointCreatedSerializer}
    ),
    partial_update=extend_schema(request=EndpointWriteSerializer, responses=EndpointSerializer),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Removed.")}),
    secret=extend_schema(responses=SecretSerializer),
    rotate_secret=extend_schema(request=None, responses=SecretSerializer),
    test=extend_schema(request=None, responses={202: DeliverySerializer}),
    deliveries=extend_schema(responses=DeliverySerializer(many=True)),
    replay=extend_schema(request=None, responses={202: DeliverySerializer}),
)
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This workspace's webhook endpoints; their deliveries and each delivery's attempts."""

    queryset = Endpoint.objects.all()
    permission_area = Area.SETTINGS
    serializer_class = EndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Endpoint]:
        # Tenant-schema rows: every row of the table is this tenant's.
        return Endpoint.objects.all()

    def create(self, request: Request) -> Response:
        form = EndpointWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        created = endpoint_svc.create_endpoint(
            self.principal, url=data["url"], events=data["events"],
            description=data.get("description", ""),
        )  # fmt: skip
        if data.get("enabled") is False:
            endpoint_svc.set_enabled(self.principal, created.endpoint, enabled=False)
        body = {**EndpointSerializer(created.endpoint).data, "secret": created.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        form = EndpointWriteSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        endpoint_svc.update_endpoint(
            self.principal, endpoint, url=data.get("url"), events=data.get("events"),
            description=data.get("description"),
        )  # fmt: skip
        if "enabled" in data:
            endpoint_svc.set_enabled(self.principal, endpoint, enabled=data["enabled"])
        endpoint.refresh_from_db()
        return Response(EndpointSerializer(endpoint).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        endpoint_svc.delete_endpoint(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["get"])
    def secret(self, request: Request, pk: str | None = None) -> Response:
        """The signing secret in clear (write access to settings; audited)."""
        return Response({"secret": endpoint_svc.reveal_secret(self.principal, self.get_object())})

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new signing secret (shown this once); the old one also signs for 24 hours."""
        secret = endpoint_svc.rotate_secret(self.principal, self.get_object())
        return Response({"secret": secret})

    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Queue a `webhook.test` event to this endpoint."""
        sent = delivery_svc.send_test(self.principal, self.get_object())
        return Response(DeliverySerializer(sent).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The endpoint's deliveries, newest first, with their attempts (paginated)."""
        endpoint = self.get_object()
        rows = Delivery.objects.filter(endpoint=endpoint).prefetch_related("attempt_log")
        page = self.paginate_queryset(rows)
        if page is not None:
            return self.get_paginated_response(DeliverySerializer(page, many=True).data)
        return Response(DeliverySerializer(rows, many=True).data)

    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]+)/replay")
    def replay(self, request: Request, pk: str | None = None, delivery_id: str = "") -> Response:
        """Send a delivery again (same id and body), with a fresh retry schedule."""
        endpoint = self.get_object()
        found = (
            Delivery.objects.select_related("endpoint")
            .filter(endpoint=endpoint, pk=int(delivery_id))
            .first()
        )
        if found is None:
            raise NotFound("No such delivery.")
        replayed = delivery_svc.replay(self.principal, found)
        return Response(DeliverySerializer(replayed).data, status=status.HTTP_202_ACCEPTED)
