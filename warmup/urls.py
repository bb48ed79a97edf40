"""Dashboard routes of the warmup app (included by penguinmails.urls_tenant under /warmup/)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from warmup import views

app_name = "warmup"
urlpatterns: list[URLPattern | URLResolver] = [
    path("mailboxes/<int:mailbox_id>/", views.mailbox_warmup, name="mailbox"),
    path("mailboxes/<int:mailbox_id>/settings/", views.mailbox_warmup_update, name="update"),
]
