"""Helpers for dashboard tests: extra members with custom roles, invitation links from mail."""

from __future__ import annotations

import re

from django.core import mail

from tenants.models import Membership, Role, Tenant, User
from tenants.permissions import Area, Level
from tests.conftest import PASSWORD

# Every dashboard page a member could open, with the area it needs (None: any member).
PAGES: list[tuple[str, Area | None]] = [
    ("/", None),
    ("/campaigns/", Area.CAMPAIGNS),
    ("/campaigns/leads/", Area.LEADS),
    ("/campaigns/templates/", Area.TEMPLATES),
    ("/mailboxes/", Area.MAILBOXES),
    ("/domains/", Area.DOMAINS),
    ("/infrastructure/", Area.INFRASTRUCTURE),
    ("/billing/", Area.BILLING),
    ("/team/", Area.TEAM),
    ("/team/roles/", Area.TEAM),
    ("/team/roles/new/", Area.TEAM),
    ("/settings/", Area.SETTINGS),
]


def custom_member(tenant: Tenant, email: str, **levels: str) -> tuple[User, Role]:
    """A new user in `tenant` with a custom role granting `levels` (others: none)."""
    permissions = {area.value: levels.get(area.value, Level.NONE.value) for area in Area}
    role = Role.objects.create(
        tenant=tenant, slug=email.split("@")[0], name=email.split("@")[0], permissions=permissions
    )
    user = User.objects.create_user(email, PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=role)
    return user, role


def invite_token_from_mail() -> str:
    """The token of the invitation link in the last email sent."""
    body = mail.outbox[-1].body
    match = re.search(r"https?://localhost(?::\d+)?/invite/([^/\s]+)/", body)
    assert match, body
    return match.group(1)
