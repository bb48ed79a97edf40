"""Dashboard routes of outgoing webhooks (included by penguinmails.urls_tenant)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from webhooks import views

app_name = "webhooks"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("<int:webhook_id>/", views.detail, name="detail"),
    path("<int:webhook_id>/edit/", views.edit, name="edit"),
    path("<int:webhook_id>/action/", views.action, name="action"),
    path("<int:webhook_id>/deliveries/<int:delivery_id>/replay/", views.replay, name="replay"),
]
