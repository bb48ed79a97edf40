"""reputation routes under /api/v1/ (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reputation.api import ListingsView

urlpatterns: list[URLPattern | URLResolver] = [
    path("reputation/listings", ListingsView.as_view(), name="reputation-listings"),
]
