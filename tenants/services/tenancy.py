"""Creating, suspending and reactivating tenants."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django_tenants.utils import schema_exists

from penguinmails import states
from penguinmails.errors import IllegalTransition, ValidationFailed
from tenants.models import TENANT_STATES, Domain, Membership, Role, Tenant, TenantStatus, User
from tenants.permissions import BuiltinRole
from tenants.services import audit
from tenants.services.schema_clone import clone_template_schema
from tenants.services.schema_pool import request_fill, take_spare

RESERVED_SLUGS = frozenset(
    {
        "www", "api", "admin", "public", "app", "mail", "smtp", "imap", "pop", "mx", "ftp",
        "static", "media", "assets", "cdn", "help", "support", "docs", "status", "billing",
        "dashboard", "login", "signup", "auth", "account", "accounts", "track", "tracking",
        "webhook", "webhooks", "health", "staff", "root", "system", "template", "tenant",
        "penguinmails", "postmaster", "abuse", "noreply", "no-reply", "test", "localhost",
    }
)  # fmt: skip
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")


def validate_slug(slug: str) -> str:
    """Return the slug normalised, or raise ValidationFailed saying why it cannot be used."""
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug) or "--" in slug:
        raise ValidationFailed(
            "Invalid workspace address.",
            fields={
                "slug": [
                    "Use 3 to 40 lowercase letters, digits and single hyphens, starting with a "
                    "letter and not ending with a hyphen."
                ]
            },
        )
    if slug in RESERVED_SLUGS or slug.startswith(("tenant_", "pg_", "xn--")):
        raise ValidationFailed(
            "That workspace address is reserved.", fields={"slug": [f"'{slug}' is reserved."]}
        )
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationFailed(
            "That workspace address is taken.", fields={"slug": [f"'{slug}' is already taken."]}
        )
    return slug


def schema_name_for(slug: str) -> str:
    # Prefixed so a tenant schema can never collide with `public` or a PostgreSQL schema.
    return "t_" + slug.replace("-", "_")


def host_for(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def tenant_url(tenant: Tenant, path: str = "/") -> str:
    port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
    return f"{settings.SITE_SCHEME}://{tenant.host}{port}{path}"


def public_url(path: str = "/") -> str:
    port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
    return f"{settings.SITE_SCHEME}://{settings.BASE_DOMAIN}{port}{path}"


def ensure_template_tenant() -> Tenant:
    """Create the hidden template tenant whose schema new tenants are cloned from.

    Registered as a tenant so that `migrate_schemas` keeps it migrated along with the others.
    Its schema is made by running the migrations once (the only time they are replayed).
    """
    from django.core.management import call_command

    template, _ = Tenant.objects.get_or_create(
        schema_name=settings.TENANT_TEMPLATE_SCHEMA,
        defaults={"name": "Template (internal)", "slug": "_template", "is_template": True},
    )
    if not schema_exists(template.schema_name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{template.schema_name}"')
        call_command(
            "migrate_schemas", schema_name=template.schema_name, interactive=False, verbosity=0
        )
    return template


@transaction.atomic
def create_tenant(*, name: str, slug: str, owner: User, actor: User | None = None) -> Tenant:
    """Create a tenant with its schema (cloned from the template), host and owner membership."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A workspace name is required.", fields={"name": ["Required."]})
    if len(name) > 200:
        raise ValidationFailed("Name too long.", fields={"name": ["At most 200 characters."]})
    slug = validate_slug(slug)
    if not schema_exists(settings.TENANT_TEMPLATE_SCHEMA):
        ensure_template_tenant()
    tenant = Tenant.objects.create(name=name, slug=slug, schema_name=schema_name_for(slug))
    # A spare schema renamed, or a clone, inside this transaction: if anything below fails,
    # the schema goes with it (a renamed spare is a spare again).
    if not take_spare(tenant.schema_name):
        clone_template_schema(settings.TENANT_TEMPLATE_SCHEMA, tenant.schema_name)
    request_fill()  # with TENANT_SPARE_SCHEMAS > 0, tops the pool up after the commit
    Domain.objects.create(domain=host_for(slug), tenant=tenant, is_primary=True)
    Membership.objects.create(
        tenant=tenant, user=owner, role=Role.objects.get(tenant=None, slug=BuiltinRole.OWNER)
    )
    audit.record("tenant.created", tenant=tenant, actor=actor or owner, slug=slug)
    return tenant


def _transition(tenant: Tenant, to: TenantStatus, *, actor: User | None, reason: str) -> Tenant:
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if not TENANT_STATES.allows(locked.status, to):
        raise IllegalTransition(f"Tenant '{locked.slug}' is {locked.status}; cannot become {to}.")
    previous = locked.status
    suspended_reason = reason if to == TenantStatus.SUSPENDED else ""
    states.transition(locked, to, reason=reason, actor=actor, suspended_reason=suspended_reason)
    audit.record(
        "tenant.status_changed",
        tenant=locked,
        actor=actor,
        **{"from": previous, "to": to},
        reason=reason,
    )
    return locked


@transaction.atomic
def suspend_tenant(tenant: Tenant, *, actor: User | None = None, reason: str = "") -> Tenant:
    return _transition(tenant, TenantStatus.SUSPENDED, actor=actor, reason=reason)


@transaction.atomic
def reactivate_tenant(tenant: Tenant, *, actor: User | None = None) -> Tenant:
    return _transition(tenant, TenantStatus.ACTIVE, actor=actor, reason="")


def real_tenants() -> QuerySet[Tenant]:
    """Every tenant but the internal template."""
    return Tenant.objects.exclude(is_template=True).exclude(schema_name="public")


@dataclass(frozen=True)
class HoldSource:
    """A reason from an app above tenants to hold a tenant's sending (billing's dunning):
    `condition()` is a boolean expression on Tenant rows, evaluated in sending_holds' query."""

    name: str
    condition: Callable[[], Any]
    reason: str


_HOLD_SOURCES: dict[str, HoldSource] = {}


def register_sending_hold(name: str, condition: Callable[[], Any], reason: str) -> None:
    """Hold the sending of every tenant for which `condition()` is true (registered at start-up
    by the apps above, which tenants cannot import)."""
    _HOLD_SOURCES[name] = HoldSource(name, condition, reason)


def sending_holds(tenant_ids: Iterable[int]) -> dict[int, str]:
    """The tenants among `tenant_ids` that may not send mail now, each with why (one query).

    Staff suspension stops sending, not only writes: the send pipeline and the campaign
    scheduler ask here rather than reading the tenants table themselves. A tenant that no longer
    exists is held too (nothing should send for it). The registered hold sources (billing's
    overdue payment) are columns of the same query."""
    wanted = set(tenant_ids)
    if not wanted:
        return {}
    sources = list(_HOLD_SOURCES.values())
    extra = {f"_hold_{i}": source.condition() for i, source in enumerate(sources)}
    rows = {
        row["pk"]: row
        for row in Tenant.objects.filter(pk__in=wanted)
        .annotate(**extra)
        .values("pk", "status", "suspended_reason", *extra)
        .order_by()
    }
    holds = {pk: "The workspace no longer exists." for pk in wanted - rows.keys()}
    for pk, row in rows.items():
        why = row["suspended_reason"]
        if row["status"] == TenantStatus.SUSPENDED:
            holds[pk] = "The workspace is suspended" + (f": {why}" if why else ".")
            continue
        for i, source in enumerate(sources):
            if row[f"_hold_{i}"]:
                holds[pk] = source.reason
                break
    return holds


def sending_hold(tenant: Tenant) -> str:
    """Why `tenant` may not send mail now, or "" when it may (see `sending_holds`)."""
    return sending_holds([tenant.pk]).get(tenant.pk, "")
