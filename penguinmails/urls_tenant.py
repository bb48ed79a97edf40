"""URLs of a tenant host (`<slug>.BASE_DOMAIN`): dashboard, REST API, sandbox pages."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("penguinmails.api.urls")),
    path("", include("tenants.urls.accounts_tenant")),
    path("", include("tenants.urls.dashboard")),
    path("campaigns/", include("campaigns.urls")),
    path("", include("deliverability.urls")),
    path("infrastructure/", include("infrastructure.urls")),
    path("billing/", include("billing.urls")),
    path("sandbox/", include("penguinmails.sandbox.urls")),
]
