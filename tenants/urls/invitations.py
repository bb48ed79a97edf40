"""Public-host URLs of invitation links (the emailed link points here)."""

from __future__ import annotations

from django.urls import path

from tenants.views import invitations

app_name = "invitations"
urlpatterns = [
    path("invite/<str:token>/", invitations.accept, name="accept"),
]
