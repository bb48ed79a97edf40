"""URLs of the public host (`BASE_DOMAIN`): landing, signup, accounts, staff admin."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from billing.webhooks import stripe_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),
    path("", include("tenants.urls.invitations")),
    path("", include("tenants.urls.accounts_public")),
]
