"""REST API of lead lists and suppressions (thin: campaigns.services.lists does the work).

- `/api/v1/lists`: list (with `lead_count`), create, retrieve, `PATCH`, `DELETE` (409 while a
  live campaign targets it); `POST /api/v1/lists/{id}/leads` `{"lead_ids": [...]}` adds members,
  `POST /api/v1/lists/{id}/leads/remove` removes them (both report unknown ids).
- `/api/v1/suppressions`: list (filters `q`, `reason`), `POST {"values": [...]}` (addresses or
  domains, up to 1,000), `DELETE /api/v1/suppressions/{id}` (a bounce or complaint needs
  `?force=true`).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.models import LeadList, Suppression
from campaigns.services import lists
from penguinmails.errors import ValidationFailed
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet


class ListSerializer(serializers.ModelSerializer):
    lead_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = LeadList
        fields = ["id", "name", "description", "lead_count", "created_at"]
        read_only_fields = fields


class ListWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)


class MembersSerializer(serializers.Serializer):
    lead_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)


class MembersResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField()
    unknown_ids = serializers.ListField(child=serializers.IntegerField())


def _object(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationFailed(
            "Send a JSON object.", fields={"non_field_errors": ["A JSON object."]}
        )
    return dict(request.data)


@extend_schema_view(
    create=extend_schema(request=ListWriteSerializer, responses={201: ListSerializer}),
    partial_update=extend_schema(request=ListWriteSerializer, responses={200: ListSerializer}),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Deleted.")}),
    add_leads=extend_schema(request=MembersSerializer, responses={200: MembersResultSerializer}),
    remove_leads=extend_schema(request=MembersSerializer, responses={200: MembersResultSerializer}),
)
class LeadListViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's lead lists."""

    queryset = LeadList.objects.all()
    permission_area = Area.LEADS
    serializer_class = ListSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[LeadList]:
        # Tenant-schema rows: every row of the table is this tenant's.
        return lists.list_lists(self.principal)

    def create(self, request: Request) -> Response:
        form = ListWriteSerializer(data=_object(request))
        form.is_valid(raise_exception=True)
        created = lists.create_list(self.principal, **form.validated_data)
        return Response(
            ListSerializer(lists.access_list(self.principal, created.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        found = lists.update_list(self.principal, self.get_object(), changes=_object(request))
        return Response(ListSerializer(lists.access_list(self.principal, found.pk)).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        lists.delete_list(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _members(self, request: Request, *, add: bool) -> Response:
        data = _object(request)
        result = lists.change_members(
            self.principal, self.get_object(), add=add, lead_ids=data.get("lead_ids")
        )
        return Response(result)

    @action(detail=True, methods=["post"], url_path="leads")
    def add_leads(self, request: Request, pk: str | None = None) -> Response:
        return self._members(request, add=True)

    @action(detail=True, methods=["post"], url_path="leads/remove")
    def remove_leads(self, request: Request, pk: str | None = None) -> Response:
        return self._members(request, add=False)


class SuppressionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "value", "is_domain", "reason", "source", "created_at"]
        read_only_fields = fields


class SuppressionWriteSerializer(serializers.Serializer):
    values = serializers.ListField(child=serializers.CharField(max_length=254), allow_empty=False)


@extend_schema_view(
    create=extend_schema(
        request=SuppressionWriteSerializer, responses={201: SuppressionSerializer(many=True)}
    ),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Lifted.")}),
)
class SuppressionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Addresses and domains this tenant never emails."""

    queryset = Suppression.objects.all()
    permission_area = Area.LEADS
    serializer_class = SuppressionSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Suppression]:
        params = self.request.query_params
        return lists.list_suppressions(
            self.principal, q=params.get("q", ""), reason=params.get("reason", "")
        )

    def create(self, request: Request) -> Response:
        form = SuppressionWriteSerializer(data=_object(request))
        form.is_valid(raise_exception=True)
        rows = lists.add_suppressions(self.principal, form.validated_data["values"])
        return Response(SuppressionSerializer(rows, many=True).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        force = request.query_params.get("force", "").lower() in ("1", "true", "yes")
        lists.remove_suppression(self.principal, self.get_object(), force=force)
        return Response(status=status.HTTP_204_NO_CONTENT)
