"""The one base for tenant-scoped API viewsets.

Scoping cannot be bypassed by a subclass (PostHog's routing.py pattern): `get_queryset` belongs
to the base and defining it in a subclass is a TypeError at import. A subclass states how its rows
belong to a tenant, either

- `tenant_field = "tenant"`: the base filters `queryset` by `tenant_field=request.tenant`, or
- `scoped_queryset(self, tenant)`: returns the rows visible in `tenant` (for rows such as
  built-in roles that are shared by every tenant), and the base calls it with request.tenant.

Every viewset also declares `permission_area` (see tenants.rest.permissions): reads need read
access to that area, writes need write access, and writes in a suspended tenant get 423.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from rest_framework import viewsets

from tenants.models import Tenant
from tenants.permissions import Area
from tenants.services.access import Principal

_SEALED = ("get_queryset",)

if TYPE_CHECKING:
    # The mixin only ever precedes an APIView; this gives it APIView's `request: Request`
    # without changing the runtime MRO.
    from rest_framework.views import APIView as _MixinBase
else:
    _MixinBase = object


class TenantScopedMixin(_MixinBase):
    """Scoping and principal access for any tenant API view (viewset or plain APIView)."""

    permission_area: ClassVar[Area | None]

    @property
    def tenant(self) -> Tenant:
        tenant = getattr(self.request._request, "tenant", None)
        if tenant is None:  # the API is routed only on tenant hosts; this is a wiring error
            raise ImproperlyConfigured("Tenant API view reached without a tenant.")
        return tenant

    @property
    def principal(self) -> Principal:
        principal = getattr(self.request._request, "principal", None)
        if principal is None:
            raise ImproperlyConfigured("Tenant API view reached without a principal.")
        return principal


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    """Base of every tenant API viewset; the only place a queryset is scoped."""

    tenant_field: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} must not define {name}(); set tenant_field or implement "
                    "scoped_queryset(tenant) and let TenantScopedViewSet scope the rows."
                )

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Any]:
        raise ImproperlyConfigured(
            f"{type(self).__name__} must set tenant_field or implement scoped_queryset(tenant)."
        )

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular builds views without a request to read the model's shape.
            return self._base_queryset().none()
        tenant = self.tenant
        if self.tenant_field is not None:
            return self._base_queryset().filter(**{self.tenant_field: tenant})
        queryset = self.scoped_queryset(tenant)
        if not isinstance(queryset, QuerySet):
            raise ImproperlyConfigured(
                f"{type(self).__name__}.scoped_queryset must return a QuerySet."
            )
        return queryset

    def _base_queryset(self) -> QuerySet[Any]:
        if self.queryset is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} must set queryset (the model's rows)."
            )
        return self.queryset.all()  # .all(): never reuse a cached result across requests
