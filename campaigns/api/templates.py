"""REST API of email templates (thin: campaigns.services.templates does the work).

/api/v1/templates (list, create, retrieve, update, partial update, delete) and
POST /api/v1/templates/{id}/preview with lead data → the rendered subject, HTML and text.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.models import EmailTemplate
from campaigns.services import templates
from penguinmails.api.fields import BoundedDictField
from tenants.models import Tenant
from tenants.permissions import Area, Level
from tenants.rest.permissions import IsTenantMember
from tenants.rest.viewsets import TenantScopedViewSet
from tenants.services.access import require


class TemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailTemplate
        fields = [
            "id",
            "name",
            "subject",
            "html_body",
            "text_body",
            "text_generated",
            "variables",
            "created_by_email",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TemplateWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=998, trim_whitespace=False)
    html_body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    text_body = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Generated from the HTML when empty.",
    )


class LeadDataSerializer(serializers.Serializer):
    """Lead values for a preview; any other key is a custom field (or put them under `custom`)."""

    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    company = serializers.CharField(required=False, allow_blank=True, max_length=200)
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    website = serializers.CharField(required=False, allow_blank=True, max_length=500)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=50)
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    custom = BoundedDictField(
        child=serializers.CharField(allow_blank=True, max_length=2000), required=False
    )


class PreviewRequestSerializer(LeadDataSerializer):
    """The body of a preview: the lead's values (none at all: a sample lead), and a seed."""

    seed = serializers.CharField(
        required=False, max_length=200, help_text="Same seed, same spintax choices."
    )


class RenderedSerializer(serializers.Serializer):
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()


class ReadOnlyAction(IsTenantMember):
    """A POST that changes nothing (a preview): read access to the area is enough."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = getattr(request._request, "principal", None)
        tenant = getattr(request._request, "tenant", None)
        if principal is None or tenant is None or principal.tenant.pk != tenant.pk:
            return False
        require(principal, view.permission_area, Level.READ)
        return True


@extend_schema_view(
    create=extend_schema(request=TemplateWriteSerializer, responses={201: TemplateSerializer}),
    update=extend_schema(request=TemplateWriteSerializer, responses={200: TemplateSerializer}),
    partial_update=extend_schema(
        request=TemplateWriteSerializer, responses={200: TemplateSerializer}
    ),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Deleted.")}),
    preview=extend_schema(request=PreviewRequestSerializer, responses={200: RenderedSerializer}),
)
class TemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's email templates: subject, HTML and text with `{{variables}}` and spintax."""

    queryset = EmailTemplate.objects.all()
    permission_area = Area.TEMPLATES
    serializer_class = TemplateSerializer

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[EmailTemplate]:
        # Tenant-schema rows: every row of the table is this tenant's.
        return EmailTemplate.objects.all()

    def get_permissions(self) -> list[Any]:
        if self.action == "preview":
            return [ReadOnlyAction()]
        return list(super().get_permissions())

    def create(self, request: Request) -> Response:
        form = TemplateWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        template = templates.create_template(self.principal, **form.validated_data)
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        template = self.get_object()
        form = TemplateWriteSerializer(data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        current = {
            "name": template.name,
            "subject": template.subject,
            "html_body": template.html_body,
            "text_body": "" if template.text_generated else template.text_body,
        }
        updated = templates.update_template(
            self.principal, template, **{**current, **form.validated_data}
        )
        return Response(TemplateSerializer(updated).data)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        templates.delete_template(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        template = self.get_object()
        form = PreviewRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        lead = dict(form.validated_data)
        seed = lead.pop("seed", None)
        rendered = templates.preview_template(
            self.principal, template, lead=lead or None, seed=seed
        )
        return Response({"subject": rendered.subject, "html": rendered.html, "text": rendered.text})
