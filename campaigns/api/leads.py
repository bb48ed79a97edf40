"""REST API of leads (thin: campaigns.services.leads does the work).

- `GET /api/v1/leads` (filters `q`, `status`, `tag`, `list`; paginated), `GET /api/v1/leads/{id}`
- `POST /api/v1/leads` one lead (201; 400 field errors; 409 when it exists or is suppressed)
- `POST /api/v1/leads/bulk` `{"leads": [...], "duplicates": "skip"|"update", "list": "name"}`:
  up to 1,000 leads, each row's outcome reported; a malformed payload is refused whole (400)
- `PATCH /api/v1/leads/{id}`, `DELETE /api/v1/leads/{id}`
- `POST /api/v1/leads/imports` (multipart CSV, 202), `GET /api/v1/leads/imports/{id}` (progress),
  `GET /api/v1/leads/imports/{id}/errors` (the rows not imported, as CSV)
"""

from __future__ import annotations

import json
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.models import LEAD_FIELDS, DuplicatePolicy, Lead, LeadImport, LeadStatus
from campaigns.services import leads
from penguinmails.api.fields import BoundedDictField
from penguinmails.errors import Conflict, ValidationFailed
from tenants.models import Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedViewSet


class LeadFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", help_text="Words in email, name or company.")
    status = django_filters.ChoiceFilter(choices=LeadStatus.choices)
    tag = django_filters.CharFilter(method="by_tag")
    list = django_filters.NumberFilter(field_name="lists__id", help_text="A lead list's id.")

    class Meta:
        model = Lead
        fields = ["q", "status", "tag", "list"]

    def search(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        return leads.filter_leads(queryset, q=value)

    def by_tag(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        return leads.filter_leads(queryset, tag=value)


class LeadSerializer(serializers.ModelSerializer):
    lists: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = Lead
        fields = [
            "id",
            *LEAD_FIELDS,
            "custom_fields",
            "tags",
            "status",
            "is_role_address",
            "is_disposable",
            "mx_ok",
            "lists",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LeadWriteSerializer(serializers.Serializer):
    """The shape of a lead in requests (validation happens in the service)."""

    email = serializers.CharField()
    first_name = serializers.CharField(required=False)
    last_name = serializers.CharField(required=False)
    company = serializers.CharField(required=False)
    title = serializers.CharField(required=False)
    website = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)
    timezone = serializers.CharField(required=False, help_text="IANA name, e.g. Europe/Paris.")
    custom_fields = BoundedDictField(required=False, max_depth=1)
    tags = serializers.ListField(child=serializers.CharField(), required=False)


class BulkSerializer(serializers.Serializer):
    leads = LeadWriteSerializer(many=True, help_text="At most 1,000.")
    duplicates = serializers.ChoiceField(choices=DuplicatePolicy.choices, required=False)
    list = serializers.CharField(required=False, help_text="Add every lead to this list.")


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField())


class ImportSerializer(serializers.ModelSerializer):
    list = serializers.CharField(source="lead_list.name", default=None, read_only=True)

    class Meta:
        model = LeadImport
        fields = [
            "id",
            "original_name",
            "status",
            "headers",
            "mapping",
            "duplicates",
            "check_mx",
            "list",
            "total_rows",
            "processed",
            "created",
            "updated",
            "skipped",
            "failed",
            "percent",
            "error_message",
            "job_id",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    mapping = serializers.CharField(
        required=False, help_text='JSON: {"CSV header": "email" | "first_name" ... | "custom:key"}'
    )
    duplicates = serializers.ChoiceField(choices=DuplicatePolicy.choices, required=False)
    list = serializers.CharField(required=False)
    check_mx = serializers.BooleanField(required=False, default=False)

    def validate_mapping(self, value: str) -> dict[str, str]:
        try:
            mapping = json.loads(value)
        except ValueError:
            raise serializers.ValidationError("Not JSON.") from None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise serializers.ValidationError("An object of column name to field name.")
        return mapping


@extend_schema_view(
    create=extend_schema(request=LeadWriteSerializer, responses={201: LeadSerializer}),
    partial_update=extend_schema(request=LeadWriteSerializer, responses={200: LeadSerializer}),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Deleted.")}),
    bulk=extend_schema(request=BulkSerializer, responses={200: BulkResultSerializer}),
    imports=extend_schema(request=ImportUploadSerializer, responses={202: ImportSerializer}),
    import_detail=extend_schema(responses={200: ImportSerializer}),
    import_errors=extend_schema(responses={(200, "text/csv"): str}),
)
class LeadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's leads: search, filters, bulk create, CSV imports."""

    queryset = Lead.objects.prefetch_related("lists")
    permission_area = Area.LEADS
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Lead]:
        # Tenant-schema rows: every row of the table is this tenant's.
        return Lead.objects.prefetch_related("lists").order_by("-created_at", "-id")

    def _data(self, request: Request) -> dict[str, Any]:
        if not isinstance(request.data, dict):
            raise ValidationFailed(
                "Send a JSON object.", fields={"non_field_errors": ["A JSON object."]}
            )
        return dict(request.data)

    def create(self, request: Request) -> Response:
        result = leads.create_leads(self.principal, rows=[self._data(request)])
        (row,) = result.results
        if row["status"] == leads.RowOutcome.FAILED:
            raise ValidationFailed("Invalid input.", fields=row["errors"])
        if row["status"] == leads.RowOutcome.SKIPPED:
            raise Conflict(f"Not created: {row['reason']}.")
        lead = self.get_queryset().get(pk=row["id"])
        return Response(LeadSerializer(lead).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        lead = leads.update_lead(self.principal, self.get_object(), changes=self._data(request))
        return Response(LeadSerializer(self.get_queryset().get(pk=lead.pk)).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        leads.delete_lead(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        data = self._data(request)
        unknown = sorted(set(data) - {"leads", "duplicates", "list"})
        if unknown:
            raise ValidationFailed(
                "Unknown keys.", fields={k: ["Not a bulk option."] for k in unknown}
            )
        result = leads.create_leads(
            self.principal,
            rows=data.get("leads"),  # type: ignore[arg-type]
            duplicates=data.get("duplicates") or DuplicatePolicy.SKIP,
            list_name=data.get("list"),
        )
        return Response(
            {
                "created": result.created,
                "updated": result.updated,
                "skipped": result.skipped,
                "failed": result.failed,
                "results": result.results,
            }
        )

    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    def imports(self, request: Request) -> Response:
        form = ImportUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        created = leads.create_import(
            self.principal,
            upload=upload,
            filename=upload.name,
            mapping=form.validated_data.get("mapping"),
            duplicates=form.validated_data.get("duplicates") or DuplicatePolicy.UPDATE,
            list_name=form.validated_data.get("list"),
            check_mx=form.validated_data["check_mx"],
        )
        return Response(ImportSerializer(created).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=False, methods=["get"], url_path=r"imports/(?P<import_id>[0-9]+)")
    def import_detail(self, request: Request, import_id: str) -> Response:
        return Response(ImportSerializer(leads.access_import(self.principal, import_id)).data)

    @action(detail=False, methods=["get"], url_path=r"imports/(?P<import_id>[0-9]+)/errors")
    def import_errors(self, request: Request, import_id: str) -> StreamingHttpResponse:
        found = leads.access_import(self.principal, import_id)
        response = StreamingHttpResponse(
            leads.import_errors_csv(self.principal, found), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="import-{found.pk}-errors.csv"'
        return response
