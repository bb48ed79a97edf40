"""The product's permission areas and access levels, and the built-in roles.

A role maps every area to one level. Built-in roles are fixed; a tenant may add custom roles with
any mapping (for example campaigns: write, billing: none).
"""

from __future__ import annotations

from django.db import models


class Area(models.TextChoices):
    CAMPAIGNS = "campaigns", "Campaigns"
    LEADS = "leads", "Leads"
    TEMPLATES = "templates", "Templates"
    MAILBOXES = "mailboxes", "Mailboxes"
    DOMAINS = "domains", "Domains"
    WARMUP = "warmup", "Warm-up"
    INFRASTRUCTURE = "infrastructure", "Infrastructure"
    BILLING = "billing", "Billing"
    TEAM = "team", "Team"
    SETTINGS = "settings", "Settings"
    API_KEYS = "api_keys", "API keys"


class Level(models.TextChoices):
    NONE = "none", "No access"
    READ = "read", "Read"
    WRITE = "write", "Read and write"


LEVEL_RANK = {Level.NONE: 0, Level.READ: 1, Level.WRITE: 2}


class BuiltinRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


def _all(level: Level) -> dict[str, str]:
    return {area.value: level.value for area in Area}


BUILTIN_PERMISSIONS: dict[str, dict[str, str]] = {
    BuiltinRole.OWNER: _all(Level.WRITE),
    BuiltinRole.ADMIN: _all(Level.WRITE),
    BuiltinRole.MEMBER: {
        **_all(Level.WRITE),
        Area.INFRASTRUCTURE: Level.READ,
        Area.BILLING: Level.NONE,
        Area.TEAM: Level.READ,
        Area.SETTINGS: Level.READ,
        Area.API_KEYS: Level.NONE,
    },
    BuiltinRole.VIEWER: {
        **_all(Level.READ),
        Area.BILLING: Level.NONE,
        Area.API_KEYS: Level.NONE,
    },
}


def normalize_permissions(raw: object) -> dict[str, str]:
    """Validate a permission mapping; every area present, every level known.

    Raises ValueError naming the first bad entry. Areas left out get `none`.
    """
    if not isinstance(raw, dict):
        raise ValueError("permissions must be an object mapping area to level")
    unknown = sorted(set(raw) - {a.value for a in Area})
    if unknown:
        raise ValueError(f"unknown area(s): {', '.join(unknown)}")
    result: dict[str, str] = {}
    for area in Area:
        level = raw.get(area.value, Level.NONE.value)
        if level not in Level.values:
            raise ValueError(
                f"{area.value}: level must be one of {', '.join(Level.values)}, got {level!r}"
            )
        result[area.value] = level
    return result
