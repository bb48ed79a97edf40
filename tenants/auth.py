"""Authentication backend: email (case-insensitive) and password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from tenants.models import User


class EmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        email = (kwargs.get("email") or username or "").strip().lower()
        if not email or password is None:
            return None
        user = User.objects.filter(email=email).first()
        if user is None:
            # Hash anyway so a missing account takes as long as a wrong password.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


def logged_in_user(request: HttpRequest) -> User:
    """`request.user` of a login-protected request (`@login_required` views, the admin).

    Narrows Django's `User | AnonymousUser`; reaching it anonymously is a wiring error.
    """
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Login required.")
    return user
