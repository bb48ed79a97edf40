from __future__ import annotations

from django.urls import path

from tenants.views import dashboard

app_name = "dashboard"
urlpatterns = [
    path("", dashboard.home, name="home"),
]
