"""Dashboard routes of the reputation app (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reputation import views

app_name = "reputation"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.overview, name="overview"),
    path("listings/", views.listings, name="listings"),
    path("domains/<int:domain_id>/", views.domain_history, name="domain"),
    path("ips/<int:ip_id>/", views.ip_history, name="ip"),
]
