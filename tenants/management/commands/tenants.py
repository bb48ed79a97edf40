"""`manage.py tenants <create|list|suspend|reactivate|apikey|prepare-template|demo>`.

Thin: each subcommand parses, calls a service in tenants.services, and prints. A refused
operation (penguinmails.errors.DomainError) exits non-zero with the message and field errors.
"""

from __future__ import annotations

import json
import secrets
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from penguinmails.errors import DomainError, NotFound, ValidationFailed
from tenants import signals
from tenants.models import Membership, Role, Tenant, TenantStatus, User
from tenants.permissions import BuiltinRole
from tenants.services import audit
from tenants.services.apikeys import create_api_key
from tenants.services.schema_pool import fill_spares
from tenants.services.tenancy import (
    create_tenant,
    ensure_template_tenant,
    reactivate_tenant,
    real_tenants,
    suspend_tenant,
    tenant_url,
)

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Agency"
DEMO_EMAIL = "demo@example.com"


def generate_password() -> str:
    # 16 URL-safe characters (~96 bits): passes every configured password validator.
    return secrets.token_urlsafe(12)


def describe(error: DomainError) -> str:
    """The message, then one line per field error, as a person at a terminal wants it."""
    lines = [error.message]
    for field, messages in error.fields.items():
        lines.extend(f"  {field}: {message}" for message in messages)
    return "\n".join(lines)


def _normalize_email(email: str) -> str:
    try:
        result = validate_email((email or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed("Invalid owner email.", fields={"owner": [str(exc)]}) from exc
    return result.normalized.lower()


def _tenant(slug: str) -> Tenant:
    tenant = real_tenants().filter(slug=(slug or "").strip().lower()).first()
    if tenant is None:
        raise NotFound(f"No tenant with slug '{slug}'.")
    return tenant


def stale_tenant_schemas() -> list[str]:
    """Tenant schemas (template included) whose django_migrations lack a node of the graph.

    `migrate_schemas` runs Django's whole migrate command per schema (graph load, checks,
    post_migrate signals, a reconnect), tens of milliseconds each even with nothing to do. This
    reads every schema's applied set in a few queries and names only the schemas that need it.
    """
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    # django-tenants records every app's migrations in each tenant schema (shared ones as no-ops),
    # so a schema is up to date when it has every node; a squashed node counts if all it
    # replaces are applied.
    required = {key: set(loader.disk_migrations[key].replaces or ()) for key in loader.graph.nodes}
    schemas = list(
        Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'django_migrations' AND c.relkind = 'r'"
        )
        with_table = {row[0] for row in cursor.fetchall()}
        applied: dict[str, set[tuple[str, str]]] = {s: set() for s in schemas}
        present = [s for s in schemas if s in with_table]
        for start in range(0, len(present), 200):
            chunk = present[start : start + 200]
            # Schema names come from our own tenant table and are quoted as identifiers.
            sql = " UNION ALL ".join(
                f"SELECT %s, app, name FROM {connection.ops.quote_name(s)}.django_migrations"  # noqa: S608
                for s in chunk
            )
            cursor.execute(sql, chunk)
            for schema, app, name in cursor.fetchall():
                applied[schema].add((app, name))
    stale = []
    for schema in schemas:
        done = applied[schema]
        if schema not in with_table or any(
            key not in done and not (replaces and replaces <= done)
            for key, replaces in required.items()
        ):
            stale.append(schema)
    return stale


class Command(BaseCommand):
    help = "Manage tenants: create, list, suspend, reactivate, API keys, template, demo."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        create = sub.add_parser("create", help="Create a tenant with its owner.")
        create.add_argument("--name", required=True, help="Display name, e.g. 'Acme Agency'.")
        create.add_argument("--slug", required=True, help="Host name part: <slug>.BASE_DOMAIN.")
        create.add_argument("--owner", required=True, help="Owner's email (created if new).")

        listing = sub.add_parser("list", help="List tenants.")
        listing.add_argument("--json", action="store_true", help="One JSON array on stdout.")
        listing.add_argument("--status", choices=[s.value for s in TenantStatus])

        suspend = sub.add_parser("suspend", help="Suspend a tenant: data readable, no changes.")
        suspend.add_argument("slug")
        suspend.add_argument("--reason", default="", help="Shown to the tenant's members.")

        reactivate = sub.add_parser("reactivate", help="Reactivate a suspended tenant.")
        reactivate.add_argument("slug")

        apikey = sub.add_parser("apikey", help="Create an API key and print it once.")
        apikey.add_argument("slug")
        apikey.add_argument("--name", required=True)
        apikey.add_argument(
            "--role",
            default=BuiltinRole.MEMBER.value,
            help="admin, member, viewer, or the slug of one of the tenant's custom roles.",
        )

        sub.add_parser(
            "prepare-template",
            help="Create the template schema new tenants are cloned from (and the spare "
            "schemas, TENANT_SPARE_SCHEMAS).",
        )
        sub.add_parser("demo", help="DEBUG only: ensure the demo tenant; print a fresh login.")
        migrate = sub.add_parser(
            "migrate",
            help="Migrate only the tenant schemas that need it (run `migrate_schemas --shared` "
            "first).",
        )
        migrate.add_argument("--check", action="store_true", help="List stale schemas; exit 1.")

    def handle(self, *args: Any, **options: Any) -> None:
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "create": self.create,
            "list": self.list_tenants,
            "suspend": self.suspend,
            "reactivate": self.reactivate,
            "apikey": self.apikey,
            "prepare-template": self.prepare_template,
            "demo": self.demo,
            "migrate": self.migrate,
        }
        try:
            handlers[options["subcommand"]](options)
        except DomainError as exc:
            raise CommandError(describe(exc)) from exc

    # --- create -----------------------------------------------------------------------------
    def create(self, options: dict[str, Any]) -> None:
        # An existing account is taken as it is; only a new address has to pass validation.
        email = (options["owner"] or "").strip().lower()
        password: str | None = None
        try:
            # One transaction: a refused slug or name leaves no new user (or schema) behind.
            with transaction.atomic():
                owner = User.objects.filter(email=email).first()
                if owner is None:
                    email = _normalize_email(email)
                    password = generate_password()
                    owner = User.objects.create_user(email, password)
                tenant = create_tenant(name=options["name"], slug=options["slug"], owner=owner)
                if password is not None:
                    audit.record("user.created", tenant=tenant, via="tenants create", email=email)
        except IntegrityError as exc:
            # Lost a race with a concurrent signup for the same slug or email.
            raise CommandError(f"Could not create the tenant: {exc}") from exc
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name})")
        self.stdout.write(f"URL:      {tenant_url(tenant, '/')}")
        self.stdout.write(f"Owner:    {owner.email}")
        if password is not None:
            self.stdout.write(f"Password: {password}")
            self.stdout.write("          (one-time: shown only now; change it after logging in)")
        else:
            self.stdout.write("          (existing user, made owner; their password is unchanged)")

    # --- list -------------------------------------------------------------------------------
    def list_tenants(self, options: dict[str, Any]) -> None:
        tenants = real_tenants().annotate(
            members=Count("memberships", filter=Q(memberships__is_active=True))
        )
        if options.get("status"):
            tenants = tenants.filter(status=options["status"])
        rows = [
            {
                "slug": t.slug,
                "name": t.name,
                "status": t.status,
                "members": t.members,  # type: ignore[attr-defined]
                "host": t.host,
                "created": t.created_at.isoformat(),
            }
            for t in tenants.order_by("slug")
        ]
        if options.get("json"):
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No tenants.")
            return
        columns = ["slug", "name", "status", "members", "host", "created"]
        shown = [{**r, "created": r["created"][:16].replace("T", " ")} for r in rows]
        widths = {c: max(len(c), *(len(str(r[c])) for r in shown)) for c in columns}
        self.stdout.write("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
        for r in shown:
            self.stdout.write("  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip())

    # --- suspend / reactivate ---------------------------------------------------------------
    def suspend(self, options: dict[str, Any]) -> None:
        tenant = suspend_tenant(_tenant(options["slug"]), reason=options["reason"].strip())
        self.stdout.write(f"Suspended {tenant.slug}.")

    def reactivate(self, options: dict[str, Any]) -> None:
        tenant = reactivate_tenant(_tenant(options["slug"]))
        self.stdout.write(f"Reactivated {tenant.slug}.")

    # --- apikey -----------------------------------------------------------------------------
    def apikey(self, options: dict[str, Any]) -> None:
        tenant = _tenant(options["slug"])
        slug = options["role"].strip().lower()
        # A built-in role wins over a custom role that happens to reuse its slug.
        role = (
            Role.objects.filter(tenant=None, slug=slug).first()
            or Role.objects.filter(tenant=tenant, slug=slug).first()
        )
        if role is None:
            known = sorted(r.slug for r in Role.objects.filter(Q(tenant=None) | Q(tenant=tenant)))
            raise ValidationFailed(
                f"Unknown role '{slug}'.", fields={"role": [f"Choose one of: {', '.join(known)}."]}
            )
        new = create_api_key(tenant, name=options["name"], role=role)
        self.stdout.write(f"API key '{new.key.name}' for {tenant.slug} (role {role.slug}):")
        self.stdout.write(new.plaintext)
        self.stdout.write("Shown only now; it is stored hashed and cannot be shown again.")

    # --- prepare-template -------------------------------------------------------------------
    def prepare_template(self, options: dict[str, Any]) -> None:
        template = ensure_template_tenant()
        self.stdout.write(f"Template schema {template.schema_name} is ready.")
        # TENANT_SPARE_SCHEMAS > 0: clone that many spares now (docs/scaling.md).
        made, dropped = fill_spares()
        if made or dropped:
            self.stdout.write(f"Spare schemas: {made} cloned, {dropped} stale dropped.")

    # --- demo -------------------------------------------------------------------------------
    def demo(self, options: dict[str, Any]) -> None:
        if not settings.DEBUG:
            raise CommandError("`tenants demo` prints a login and runs only with DEBUG=true.")
        password = generate_password()
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_user(DEMO_EMAIL, full_name="Demo Owner")
            user.set_password(password)
            user.is_active = True
            user.email_verified_at = user.email_verified_at or timezone.now()
            user.save(update_fields=["password", "is_active", "email_verified_at"])
            tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
            if tenant is None:
                tenant = create_tenant(name=DEMO_NAME, slug=DEMO_SLUG, owner=user)
            else:
                if tenant.is_suspended:
                    tenant = reactivate_tenant(tenant)
                # Dev-only repair: whatever happened to the demo data, the printed login works.
                owner = Role.objects.get(tenant=None, slug=BuiltinRole.OWNER)
                Membership.objects.update_or_create(
                    tenant=tenant,
                    user=user,
                    defaults={"role": owner, "is_active": True, "deactivated_at": None},
                )
            audit.record("demo.login_reset", tenant=tenant, email=DEMO_EMAIL)
        # The demo's infrastructure, domain, mailboxes and campaign belong to the apps above
        # tenants: campaigns.demo seeds them when told (tenants.signals).
        signals.demo_workspace_ready.send(
            sender=Tenant, tenant=tenant, owner=user, say=self.stdout.write
        )
        self.stdout.write(f"Demo workspace: {tenant.name}")
        self.stdout.write(f"Log in at:      {tenant_url(tenant, '/login/')}")
        self.stdout.write(f"Email:          {DEMO_EMAIL}")
        self.stdout.write(f"Password:       {password}")

    # --- migrate ----------------------------------------------------------------------------
    def migrate(self, options: dict[str, Any]) -> None:
        from django.core.management import call_command

        stale = stale_tenant_schemas()
        if options.get("check"):
            if stale:
                raise CommandError(f"{len(stale)} schema(s) need migrating: {', '.join(stale)}")
            self.stdout.write("Every tenant schema is up to date.")
            return
        for schema in stale:
            call_command(
                "migrate_schemas",
                schema_name=schema,
                interactive=False,
                verbosity=options.get("verbosity", 1),
            )
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(f"Migrated {len(stale)} tenant schema(s); the others were current.")
