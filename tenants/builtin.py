"""The built-in roles, created by a data migration (and re-created by the test suite after a
transactional test's flush empties the table)."""

from __future__ import annotations

from typing import Any

from tenants.permissions import BUILTIN_PERMISSIONS, BuiltinRole

DESCRIPTIONS = {
    "owner": "Everything, including billing and transferring ownership.",
    "admin": "Everything except changing owners.",
    "member": "Runs campaigns, leads, templates, mailboxes and domains; no billing or API keys.",
    "viewer": "Reads everything except billing; changes nothing.",
}


def ensure_builtin_roles(role_model: Any) -> None:
    """Create or refresh the built-in roles; `role_model` is the (historical) Role model."""
    for role in BuiltinRole:
        role_model.objects.update_or_create(
            tenant=None,
            slug=role.value,
            defaults={
                "name": role.label,
                "permissions": dict(BUILTIN_PERMISSIONS[role]),
                "is_builtin": True,
                "description": DESCRIPTIONS[role.value],
            },
        )
