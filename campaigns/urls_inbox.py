"""The unified inbox's pages, mounted at /inbox/ (campaigns owns them)."""

from __future__ import annotations

from django.urls import path

from campaigns.views import inbox as views

app_name = "inbox"
urlpatterns = [
    path("", views.inbox, name="index"),
    path("<int:inbound_id>/", views.thread, name="thread"),
    path("<int:inbound_id>/label/", views.label, name="label"),
    path("<int:inbound_id>/read/", views.mark, name="read"),
    path("<int:inbound_id>/reply/", views.reply, name="reply"),
]
