"""Account pages on a tenant host: login, logout, cross-host handoff, verification resend."""

from __future__ import annotations

from django.urls import path

from tenants.views import accounts

urlpatterns = [
    path("login/", accounts.tenant_login, name="login"),
    path("logout/", accounts.tenant_logout, name="logout"),
    path("auth/handoff/<str:token>/", accounts.handoff, name="handoff"),
    path("account/verify/resend/", accounts.resend_verification, name="resend_verification"),
]
