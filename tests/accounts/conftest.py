"""Fixtures for account tests: a clean login-guard budget and resend throttle for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from tenants.services.login_guard import KEY_PREFIX


def _clear() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in (f"{KEY_PREFIX}*", "*verify-resend:*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)


@pytest.fixture(autouse=True)
def clean_login_guard() -> Iterator[None]:
    _clear()
    yield
    _clear()
