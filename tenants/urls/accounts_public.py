"""Account pages on the public host: landing, signup, login, verification, password reset."""

from __future__ import annotations

from django.urls import path

from tenants.views import accounts

urlpatterns = [
    path("", accounts.landing, name="landing"),
    path("signup/", accounts.signup, name="signup"),
    path("login/", accounts.public_login, name="login"),
    path("logout/", accounts.public_logout, name="logout"),
    path("workspaces/", accounts.workspaces, name="workspaces"),
    path("workspaces/<slug:slug>/", accounts.enter_workspace, name="enter_workspace"),
    path("verify-email/<str:token>/", accounts.verify_email, name="verify_email"),
    path("password-reset/", accounts.password_reset_request, name="password_reset"),
    path(
        "password-reset/<str:uidb64>/<str:token>/",
        accounts.password_reset_confirm,
        name="password_reset_confirm",
    ),
]
