"""REST API of the tenants app: who am I, members, roles and API keys (thin: services do the work).

Serializers validate and shape; viewsets resolve objects through the scoped base and call the
services in tenants.services, which check permissions again and record audit events.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from penguinmails.api.fields import BoundedDictField
from tenants.models import ApiKey, Membership, Role, Tenant
from tenants.permissions import Area
from tenants.rest.viewsets import TenantScopedMixin, TenantScopedViewSet
from tenants.services import apikeys, team

# --- Serializers ----------------------------------------------------------------------------


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    full_name = serializers.CharField(read_only=True)


class RoleSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Role
        fields = ["id", "slug", "name"]
        read_only_fields = fields


@extend_schema_field(
    {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Role id or slug."}
)
class RoleRefField(serializers.Field):
    """A role of this tenant (built-in or custom), given by id or by slug (`"admin"`)."""

    default_error_messages = {
        "unknown": "No such role in this workspace.",
        "invalid": "Give a role id or slug.",
    }

    def to_internal_value(self, data: Any) -> Role:
        tenant: Tenant = self.context["tenant"]
        visible = Role.objects.filter(Q(tenant=None) | Q(tenant=tenant))
        if isinstance(data, bool) or not isinstance(data, int | str) or data == "":
            self.fail("invalid")
        found = (
            visible.filter(pk=data).first()
            if isinstance(data, int) or (data.isascii() and data.isdigit())
            else visible.filter(slug=data).first()
        )
        if found is None:
            self.fail("unknown")
        return found

    def to_representation(self, value: Role) -> dict[str, Any]:
        return RoleSummarySerializer(value).data


class MemberSerializer(serializers.ModelSerializer):
    user = UserSummarySerializer(read_only=True)
    role = RoleSummarySerializer(read_only=True)
    is_owner = serializers.BooleanField(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "is_owner", "is_active", "joined_at", "deactivated_at"]
        read_only_fields = fields


class MemberUpdateSerializer(serializers.Serializer):
    role = RoleRefField(help_text="Role id or slug (built-in or one of this tenant's roles).")


class RoleSerializer(serializers.ModelSerializer):
    permissions = BoundedDictField(
        child=serializers.CharField(),
        max_depth=1,
        help_text="Area → level (`none`, `read`, `write`). Areas left out get `none`.",
    )

    class Meta:
        model = Role
        fields = ["id", "slug", "name", "description", "permissions", "is_builtin", "created_at"]
        read_only_fields = ["id", "slug", "is_builtin", "created_at"]
        extra_kwargs = {"description": {"required": False}}


class ApiKeySerializer(serializers.ModelSerializer):
    role = RoleSummarySerializer(read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    role = RoleRefField(required=False, help_text="Role id or slug; defaults to `member`.")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="The secret key. Shown in this response only, never again."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class MeTenantSerializer(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    status = serializers.CharField()


class MeRoleSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    permissions = serializers.DictField(child=serializers.CharField())


class MeApiKeySerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField()


class MeSerializer(serializers.Serializer):
    user = UserSummarySerializer(allow_null=True, help_text="With an API key: its creator.")
    tenant = MeTenantSerializer()
    role = MeRoleSerializer()
    api_key = MeApiKeySerializer(allow_null=True, help_text="Present when authenticated by key.")


# --- Filters --------------------------------------------------------------------------------


class MemberFilter(django_filters.FilterSet):
    role = django_filters.CharFilter(field_name="role__slug", help_text="Role slug.")
    is_active = django_filters.BooleanFilter()
    email = django_filters.CharFilter(field_name="user__email", lookup_expr="icontains")

    class Meta:
        model = Membership
        fields = ["role", "is_active", "email"]


class RoleFilter(django_filters.FilterSet):
    class Meta:
        model = Role
        fields = ["is_builtin"]


class ApiKeyFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", help_text="true: not revoked."
    )

    class Meta:
        model = ApiKey
        fields = ["is_active"]


# --- Views ----------------------------------------------------------------------------------


class MeView(TenantScopedMixin, APIView):
    """The caller: user, tenant, role and (with an API key) the key."""

    permission_area = None

    @extend_schema(responses=MeSerializer, operation_id="me")
    def get(self, request: Request) -> Response:
        principal = self.principal
        key = principal.api_key
        user = principal.user
        data = {
            "user": UserSummarySerializer(user).data if user is not None else None,
            "tenant": {
                "name": principal.tenant.name,
                "slug": principal.tenant.slug,
                "status": principal.tenant.status,
            },
            "role": {
                "slug": principal.role.slug,
                "name": principal.role.name,
                "permissions": principal.role.permissions,
            },
            "api_key": {"name": key.name, "prefix": key.prefix} if key is not None else None,
        }
        return Response(MeSerializer(data).data)


@extend_schema_view(
    partial_update=extend_schema(
        request=MemberUpdateSerializer,
        responses=MemberSerializer,
        description="Change a member's role. Only an owner changes owners; one owner must stay.",
    ),
    deactivate=extend_schema(request=None, responses=MemberSerializer),
    reactivate=extend_schema(request=None, responses=MemberSerializer),
)
class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Members of this tenant (people join through invitations, not this API)."""

    queryset = Membership.objects.select_related("user", "role")
    tenant_field = "tenant"
    permission_area = Area.TEAM
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    http_method_names = ["get", "patch", "post", "head", "options"]

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        membership = self.get_object()
        form = MemberUpdateSerializer(data=request.data, context={"tenant": self.tenant})
        form.is_valid(raise_exception=True)
        updated = team.change_member_role(
            self.principal, membership, role=form.validated_data["role"]
        )
        return Response(MemberSerializer(self._fresh(updated)).data)

    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        updated = team.deactivate_member(self.principal, self.get_object())
        return Response(MemberSerializer(self._fresh(updated)).data)

    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str | None = None) -> Response:
        updated = team.reactivate_member(self.principal, self.get_object())
        return Response(MemberSerializer(self._fresh(updated)).data)

    def _fresh(self, membership: Membership) -> Membership:
        return self.get_queryset().get(pk=membership.pk)


@extend_schema_view(
    create=extend_schema(request=RoleSerializer, responses={201: RoleSerializer}),
    partial_update=extend_schema(request=RoleSerializer, responses=RoleSerializer),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Deleted.")}),
)
class RoleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Built-in roles (read-only) and this tenant's custom roles."""

    queryset = Role.objects.all()
    permission_area = Area.TEAM
    serializer_class = RoleSerializer
    filterset_class = RoleFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Role]:
        # Built-in roles belong to no tenant and are visible in all of them.
        return Role.objects.filter(Q(tenant=None) | Q(tenant=tenant))

    def create(self, request: Request) -> Response:
        form = RoleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        role = team.create_role(self.principal, **form.validated_data)
        return Response(RoleSerializer(role).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        role = self.get_object()
        form = RoleSerializer(role, data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        updated = team.update_role(self.principal, role, **form.validated_data)
        return Response(RoleSerializer(updated).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        team.delete_role(self.principal, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    create=extend_schema(
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
        description="Create a key. The `key` field of this response is the only time the secret "
        "is shown; only its hash is stored.",
    ),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Revoked.")}),
    revoke=extend_schema(request=None, responses=ApiKeySerializer),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """This tenant's API keys, without their secrets. Revoked keys stay listed, inactive."""

    queryset = ApiKey.objects.select_related("role", "created_by")
    tenant_field = "tenant"
    permission_area = Area.API_KEYS
    serializer_class = ApiKeySerializer
    filterset_class = ApiKeyFilter
    http_method_names = ["get", "post", "delete", "head", "options"]

    def create(self, request: Request) -> Response:
        form = ApiKeyCreateSerializer(data=request.data, context={"tenant": self.tenant})
        form.is_valid(raise_exception=True)
        principal = self.principal
        new = apikeys.create_api_key(
            self.tenant,
            name=form.validated_data["name"],
            role=form.validated_data.get("role"),
            actor=principal.user,
            principal=principal,
        )
        body = dict(ApiKeySerializer(new.key).data, key=new.plaintext)
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        apikeys.revoke_api_key(
            self.get_object(), actor=self.principal.user, principal=self.principal
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        revoked = apikeys.revoke_api_key(
            self.get_object(), actor=self.principal.user, principal=self.principal
        )
        return Response(ApiKeySerializer(self.get_queryset().get(pk=revoked.pk)).data)
