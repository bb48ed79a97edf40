"""Strict helpers that read settings from the environment.

Every variable the platform reads goes through one of these, so a missing or malformed value
fails at start-up with the variable's name instead of somewhere deep in a request.
"""

from __future__ import annotations

import os
from typing import Final

from django.core.exceptions import ImproperlyConfigured


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | _Required = REQUIRED) -> str:
    value = os.environ.get(name)
    if value is None:
        if isinstance(default, _Required):
            raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
        return default
    return value


def env_bool(name: str, default: bool | _Required = REQUIRED) -> bool:
    value = os.environ.get(name)
    if value is None:
        if isinstance(default, _Required):
            raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name} must be a boolean (true/false), got {value!r}."
    )


def env_int(name: str, default: int | _Required = REQUIRED) -> int:
    value = os.environ.get(name)
    if value is None:
        if isinstance(default, _Required):
            raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"Environment variable {name} must be an integer, got {value!r}."
        ) from None


def env_list(name: str, default: list[str] | _Required = REQUIRED) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    value = os.environ.get(name)
    if value is None:
        if isinstance(default, _Required):
            raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]
