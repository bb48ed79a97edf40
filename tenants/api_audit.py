"""GET /api/v1/audit: the tenant's audit log (docs/audit.md), newest first, paginated.

Readable by roles with write access to Team (owner, admin); members, viewers and their API keys
get 403, another tenant's key sees only its own tenant. Filters: actor (an address), action (a
name, or a prefix ending in "."), source (app, admin, support), since and until (days, UTC).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers

from tenants.models import AuditEvent, AuditSource, Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet
from tenants.services.audit import LogFilter, require_log_access, tenant_log


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor_email", read_only=True, help_text="The acting user's address; empty: system."
    )
    by_staff = serializers.BooleanField(
        read_only=True, help_text="True for PenguinMails staff: admin changes and support looks."
    )

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "action", "source", "by_staff", "actor", "detail"]
        read_only_fields = fields


class AuditQuerySerializer(serializers.Serializer):
    actor = serializers.EmailField(required=False)
    action = serializers.CharField(required=False, max_length=100)
    # A declared field named like Field.source: DRF's metaclass takes it out of the class.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=AuditSource.choices, required=False
    )
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:
            raise serializers.ValidationError({"until": ["The last day comes after the first."]})
        return attrs


@extend_schema(
    parameters=[
        OpenApiParameter("actor", str, description="Only events by this address."),
        OpenApiParameter("action", str, description='An action, or a prefix ("campaign.").'),
        OpenApiParameter("source", str, enum=AuditSource.values),
        OpenApiParameter("since", str, description="First day (YYYY-MM-DD, UTC)."),
        OpenApiParameter("until", str, description="Last day (YYYY-MM-DD, UTC)."),
    ]
)
class AuditEventViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """The tenant's audit log: its members', keys' and platform staff's actions. Read-only."""

    queryset = AuditEvent.objects.all()
    permission_area = Area.TEAM
    serializer_class = AuditEventSerializer
    http_method_names = ["get", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[AuditEvent]:
        require_log_access(self.principal)  # a refused role hears 403, not about its filters
        query = AuditQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return tenant_log(self.principal, LogFilter(**query.validated_data))
