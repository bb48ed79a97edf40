"""REST API of sending domains (thin: deliverability.services.domains does the work).

/api/v1/domains (list, create, retrieve, delete) and POST /api/v1/domains/{id}/verify (202 with
the verification job's id); POST /api/v1/domains/{id}/resume lifts automatic protection's hold
(docs/inbound.md, "Automatic protection").
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deliverability.models import DomainRecord, SendingDomain
from deliverability.services import domains, protection
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet


class DomainRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = DomainRecord
        fields = [
            "purpose",
            "type",
            "name",
            "value",
            "priority",
            "ttl",
            "required",
            "status",
            "found",
            "fix",
            "checked_at",
        ]
        read_only_fields = fields


class DomainSerializer(serializers.ModelSerializer):
    records = DomainRecordSerializer(many=True, read_only=True)

    class Meta:
        model = SendingDomain
        fields = [
            "id",
            "name",
            "status",
            "tracking_host",
            "dkim_selector",
            "dmarc_rua",
            "verified_at",
            "flagged_at",
            "sending_paused_at",
            "sending_paused_reason",
            "last_checked_at",
            "next_check_at",
            "created_at",
            "records",
        ]
        read_only_fields = fields


class DomainCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=253, help_text="The domain, e.g. example.com.")
    tracking_host = serializers.CharField(
        max_length=253, required=False, help_text="Defaults to track.<name>."
    )
    dmarc_rua = serializers.CharField(
        max_length=254, required=False, help_text="Where DMARC aggregate reports go."
    )


class VerifyAcceptedSerializer(serializers.Serializer):
    job_id = serializers.IntegerField()
    status = serializers.CharField(help_text="The domain's status (verifying).")


@extend_schema_view(
    create=extend_schema(request=DomainCreateSerializer, responses={201: DomainSerializer}),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Removed.")}),
    verify=extend_schema(request=None, responses={202: VerifyAcceptedSerializer}),
)
class DomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's sending domains with their DNS records and each record's last verdict."""

    queryset = SendingDomain.objects.prefetch_related("records")
    permission_area = Area.DOMAINS
    serializer_class = DomainSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[SendingDomain]:
        # Tenant-schema rows: the connection is already on this tenant's schema, so every row
        # of the table is this tenant's.
        return SendingDomain.objects.prefetch_related("records")

    def create(self, request: Request) -> Response:
        form = DomainCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        domain = domains.add_domain(self.principal, **form.validated_data)
        fresh = self.get_queryset().get(pk=domain.pk)
        return Response(DomainSerializer(fresh).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        domains.remove_domain(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        domain = self.get_object()
        job = domains.verify_domain(self.principal, domain)
        return Response(
            {"job_id": job.pk, "status": domain.status}, status=status.HTTP_202_ACCEPTED
        )

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Send from the domain again after automatic protection held it (recorded)."""
        protection.resume_domain(self.principal, self.get_object())
        return Response(DomainSerializer(self.get_queryset().get(pk=pk)).data)
