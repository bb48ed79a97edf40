"""Sandbox pages on tenant hosts (they answer 404 unless DEBUG)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from penguinmails.sandbox import views

app_name = "sandbox"
urlpatterns: list[URLPattern | URLResolver] = [
    path("mail/", views.message_list, name="messages"),
    path("mail/clear/", views.clear, name="clear"),
    path("mail/<str:key>/", views.message_detail, name="message"),
]
