"""REST API of the tenant's infrastructure (thin: infrastructure.services does the work).

GET /api/v1/infrastructure: servers, IPs, mail servers and monthly cost (never a secret);
GET /api/v1/infrastructure/{id}: one server, with its CPU, memory and disk (`resources`: newest
reading, the plan's thresholds, recent history); POST /api/v1/infrastructure/provision: 202 with the
servers asked for (their steps run as jobs).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from infrastructure.models import VpsInstance
from infrastructure.services import overview as reads
from infrastructure.services import resources
from infrastructure.services.provisioning import provision_for
from penguinmails import states
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet


@extend_schema_view(
    list=extend_schema(responses={200: OpenApiTypes.OBJECT}, operation_id="infrastructure"),
    retrieve=extend_schema(
        responses={200: OpenApiTypes.OBJECT}, operation_id="infrastructure_server"
    ),
    provision=extend_schema(
        request=None,
        responses={202: OpenApiTypes.OBJECT},
        operation_id="infrastructure_provision",
    ),
)
class InfrastructureViewSet(TenantScopedViewSet):
    """This tenant's servers (VPS), IP addresses and mail servers, with provisioning progress."""

    queryset = VpsInstance.objects.all()
    tenant_field = "tenant"
    permission_area = Area.INFRASTRUCTURE
    http_method_names = ["get", "post", "head", "options"]

    def list(self, request: Request) -> Response:
        return Response(reads.as_dict(reads.overview(self.tenant)))

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        vps: VpsInstance = self.get_object()
        data: dict[str, Any] = reads.vps_summary(vps)
        data["ips"] = [reads.ip_summary(ip) for ip in vps.ips.all()]
        # CPU, memory and disk: the newest reading, the plan's thresholds, the recent history.
        data["resources"] = resources.resources_summary(
            resources.latest_samples([vps.pk]).get(vps.pk),
            resources.thresholds_for(self.tenant),
            resources.history(vps),
        )
        data["transitions"] = [
            {"from": t.from_status, "to": t.to_status, "reason": t.reason, "at": t.at.isoformat()}
            for t in states.history(vps)
        ]
        return Response(data)

    @action(detail=False, methods=["post"])
    def provision(self, request: Request) -> Response:
        servers = provision_for(self.principal)
        return Response(
            {"servers": [reads.vps_summary(v) for v in servers]}, status=status.HTTP_202_ACCEPTED
        )
