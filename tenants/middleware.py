"""Host routing: `<BASE_DOMAIN>` is the public site, `<slug>.<BASE_DOMAIN>` a tenant's workspace."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import set_urlconf

from tenants.db import TenantConnection
from tenants.models import Domain
from tenants.services.access import active_membership, principal_for_membership


class TenantHostMiddleware:
    """Selects the schema and URLconf from the Host header.

    Unknown hosts get 404 rather than falling back to the public site, so a typo never shows a
    page that looks like someone's workspace.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        db = cast(TenantConnection, connection)
        db.set_schema_to_public()
        try:
            hostname = request.get_host().split(":")[0].lower()
        except DisallowedHost:
            return HttpResponseNotFound("Unknown host.")
        request.tenant = None  # type: ignore[attr-defined]
        if hostname == settings.BASE_DOMAIN:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
            set_urlconf(request.urlconf)  # type: ignore[attr-defined]
        else:
            domain = (
                Domain.objects.select_related("tenant")
                .filter(domain=hostname, tenant__is_template=False)
                .first()
            )
            if domain is None:
                raise Http404(f"No workspace at {hostname}.")
            tenant = domain.tenant
            tenant.domain_url = hostname
            request.tenant = tenant  # type: ignore[attr-defined]
            db.set_tenant(tenant)
            request.urlconf = settings.ROOT_URLCONF  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            # Never let a schema leak into the next request served by this thread.
            db.set_schema_to_public()
            set_urlconf(None)


class MembershipMiddleware:
    """On a tenant host, attaches the user's active membership and acting principal.

    A logged-in user who is not an active member of this tenant is treated as anonymous here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.principal = None  # type: ignore[attr-defined]
        tenant = getattr(request, "tenant", None)
        if tenant is not None and request.user.is_authenticated:
            membership = active_membership(request.user, tenant)  # type: ignore[arg-type]
            if membership is None:
                from django.contrib.auth.models import AnonymousUser

                request.user = AnonymousUser()
            else:
                request.membership = membership  # type: ignore[attr-defined]
                request.principal = principal_for_membership(membership)  # type: ignore[attr-defined]
        return self.get_response(request)
