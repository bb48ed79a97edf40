"""The seed's migration flow (`manage.py migrate_safely`): lock, backup, migrate, validate, and
on any failure restore the backup and say what happened.

The lock is a PostgreSQL advisory lock held by a connection of its own for the whole run, so two
runs never overlap even from two machines, and a run that dies releases it with its connection.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import get_tenant_model
from psycopg import sql

from penguinmails.backups import pg
from penguinmails.backups.models import Backup
from penguinmails.backups.restore import restore_database
from penguinmails.backups.services import Progress, _quiet, create_backup
from penguinmails.db import TenantConnection
from penguinmails.errors import Conflict, DomainError

# Any fixed 64-bit number, the same in every process: "PMMIGRAT" in ASCII, as a bigint.
LOCK_KEY = int.from_bytes(b"PMMIGRAT", "big") & 0x7FFFFFFFFFFFFFFF


class MigrationLocked(Conflict):
    code = "migration_locked"


class MigrationFailed(DomainError):
    status_code = 500
    code = "migration_failed"


@dataclass
class Outcome:
    backup: Backup
    schemas: int
    models: int


@contextmanager
def migration_lock() -> Iterator[None]:
    with pg.connect(autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()
        if not (row and row[0]):
            raise MigrationLocked(
                f"Another migrate_safely is running ({_holder(conn)}); not starting."
            )
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def _holder(conn: Any) -> str:
    row = conn.execute(
        "SELECT a.pid, a.backend_start, a.client_addr FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s "
        "AND l.objid = %s LIMIT 1",
        [LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF],
    ).fetchone()
    if not row:
        return "lock held"
    where = row[2] or "local socket"
    return f"PostgreSQL backend pid {row[0]} from {where}, since {row[1]:%Y-%m-%d %H:%M:%S}"


def migrate_safely(*, progress: Progress = _quiet, verbosity: int = 1) -> Outcome:
    """Backup, migrate (shared, then tenants), validate; restore the backup on any failure."""
    with migration_lock():
        progress("lock taken; backing up the whole database first")
        backup = create_backup(reason="pre-migrate", progress=progress)
        step = "migrate_schemas --shared"
        try:
            progress("migrating the shared (public) schema")
            call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
            step = "tenants migrate"
            progress("migrating the tenant schemas that are behind (template included)")
            call_command("tenants", "migrate", verbosity=verbosity)
            step = "validation"
            schemas, models = validate(progress)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the database goes back
            reason = f"{type(exc).__name__}: {exc}"
            progress(f"FAILED during {step}: {reason}")
            progress(f"restoring the database from backup #{backup.pk}")
            connection.close()
            try:
                restore_database(backup_id=backup.pk, progress=progress)
            except DomainError as restore_error:
                raise MigrationFailed(
                    f"Migration failed during {step} ({reason}) AND restoring backup "
                    f"#{backup.pk} failed: {restore_error.message}. Restore by hand: "
                    f"manage.py backup restore --backup {backup.pk} --yes"
                ) from exc
            raise MigrationFailed(
                f"Migration failed during {step} ({reason}); the database was restored from "
                f"backup #{backup.pk} taken just before, so nothing of this run remains."
            ) from exc
    return Outcome(backup=backup, schemas=schemas, models=models)


def _app_models(app_list: list[str]) -> list[Any]:
    found = []
    for config in apps.get_app_configs():
        if config.name in app_list:
            found += [
                m for m in config.get_models(include_auto_created=True)
                if m._meta.managed and not m._meta.proxy
            ]  # fmt: skip
    return found


def _probe(schema: str, models: list[Any]) -> sql.Composed:
    """One statement that names every column of every model's table in the schema: PostgreSQL
    resolves each at parse time, so a missing table or column fails it without reading rows."""
    parts = [
        sql.SQL("SELECT count(*) FROM (SELECT {} FROM {}.{} LIMIT 0) AS {}").format(
            sql.SQL(", ").join(sql.Identifier(f.column) for f in m._meta.concrete_fields),
            sql.Identifier(schema),
            sql.Identifier(m._meta.db_table),
            sql.Identifier(f"m{i}"),
        )
        for i, m in enumerate(models)
    ]
    return sql.SQL(" UNION ALL ").join(parts)


def validate(progress: Progress = _quiet) -> tuple[int, int]:
    """System checks; no migration left unapplied (public, every tenant schema); then one query
    per schema naming every column of every table its apps should have there. Returns (schemas,
    tables) checked; raises on the first problem."""
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    cast(TenantConnection, connection).set_schema_to_public()
    executor = MigrationExecutor(connection)
    left = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if left:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in left[:5])
        raise MigrationFailed(f"{len(left)} migration(s) still unapplied in public: {names}")
    call_command("tenants", "migrate", check=True, stdout=out, stderr=out)
    shared = _app_models(settings.SHARED_APPS)
    tenant = _app_models(settings.TENANT_APPS)
    schemas = list(
        get_tenant_model()
        .objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )
    with pg.connect() as conn:
        conn.execute(_probe(settings.PUBLIC_SCHEMA_NAME, shared))
        for schema in schemas:
            conn.execute(_probe(schema, tenant))
    progress(
        f"validated: system checks, public ({len(shared)} tables) and {len(schemas)} tenant "
        f"schema(s) ({len(tenant)} tables each)"
    )
    return 1 + len(schemas), len(shared) + len(tenant)
