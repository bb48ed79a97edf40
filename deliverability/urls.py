from __future__ import annotations

from django.urls import path

from deliverability import views

app_name = "deliverability"
urlpatterns = [
    path("mailboxes/", views.mailboxes, name="mailboxes"),
    path("domains/", views.domains, name="domains"),
    path("warmup/", views.warmup, name="warmup"),
]
