"""Dashboard routes of the warmup app (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "warmup"
urlpatterns: list[URLPattern | URLResolver] = []
