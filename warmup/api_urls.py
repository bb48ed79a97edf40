"""warmup routes under /api/v1/ (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
