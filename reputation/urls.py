"""Dashboard routes of the reputation app (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "reputation"
urlpatterns: list[URLPattern | URLResolver] = []
