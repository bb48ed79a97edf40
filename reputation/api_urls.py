"""reputation routes under /api/v1/ (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path

from reputation.api import ListingsView, ScoresView

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^reputation/?$", ScoresView.as_view(), name="reputation-scores"),
    path("reputation/listings", ListingsView.as_view(), name="reputation-listings"),
]
