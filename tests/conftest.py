"""Shared fixtures: the test database, and a cast in two tenants.

`cast` gives tenant `acme` with an owner, an admin, a member and a viewer, and a second tenant
`globex` whose owner is the outsider: every tenant-facing path is tested with the outsider, who
must see and change nothing in acme.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client, override_settings
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from tenants.builtin import ensure_builtin_roles
from tenants.models import Membership, Role, Tenant, User
from tenants.services.tenancy import create_tenant, ensure_template_tenant

PASSWORD = "correct-horse-battery-staple"

# Production hashes passwords slowly on purpose; the suite logs in thousands of times.
override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]).enable()


@dataclass
class Cast:
    tenant: Tenant
    owner: User
    admin: User
    member: User
    viewer: User
    other_tenant: Tenant
    outsider: User


@pytest.fixture(scope="session")
def django_db_setup(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest
) -> Iterator[None]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        ensure_template_tenant()
        _ensure_cast()
    yield


def _user(email: str) -> User:
    user = User.objects.filter(email=email).first()
    return user or User.objects.create_user(email, PASSWORD)


def _tenant(name: str, slug: str, owner: User) -> Tenant:
    existing = Tenant.objects.filter(slug=slug).first()
    if existing is not None:
        return existing
    # A transactional test's flush empties public tables but leaves schemas behind.
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "t_{slug}" CASCADE')
    return create_tenant(name=name, slug=slug, owner=owner)


def _ensure_cast() -> Cast:
    # After a transactional test's flush, public rows (built-in roles, the template tenant's row)
    # are gone while schemas remain: put back what the suite relies on.
    if not Role.objects.filter(tenant=None).exists():
        ensure_builtin_roles(Role)
    if not Tenant.objects.filter(is_template=True).exists():
        ensure_template_tenant()
    owner = _user("owner@acme.test")
    tenant = _tenant("Acme Agency", "acme", owner)
    roles = {r.slug: r for r in Role.objects.filter(tenant=None)}
    users = {}
    for slug in ("admin", "member", "viewer"):
        user = _user(f"{slug}@acme.test")
        Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": roles[slug]})
        users[slug] = user
    outsider = _user("outsider@globex.test")
    other = _tenant("Globex Sales", "globex", outsider)
    return Cast(
        tenant=tenant,
        owner=owner,
        admin=users["admin"],
        member=users["member"],
        viewer=users["viewer"],
        other_tenant=other,
        outsider=outsider,
    )


@pytest.fixture
def cast(db: None) -> Cast:
    connection.set_schema_to_public()
    return _ensure_cast()


def host_of(tenant: Tenant) -> str:
    return f"{tenant.slug}.localhost"


def client_for(user: User | None, tenant: Tenant | None, *, api: bool = False) -> Client:
    """A test client on the tenant's host (public host when tenant is None), logged in as user."""
    host = host_of(tenant) if tenant is not None else "localhost"
    client: Client = APIClient(HTTP_HOST=host) if api else Client(HTTP_HOST=host)
    if user is not None:
        # The session row goes to the schema of the host it is made for.
        with schema_context(tenant.schema_name if tenant is not None else "public"):
            client.force_login(user)
    return client


@pytest.fixture
def public_client(db: None) -> Client:
    return Client(HTTP_HOST="localhost")
