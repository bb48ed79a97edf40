"""Restoring backups: one tenant's schema, the whole database, or a scratch copy to verify.

Restores run pg_restore's SQL through psql in ONE transaction (penguinmails.backups.pg). A
tenant's schema is restored under a temporary name, checked against the backup's row counts and
swapped in by rename (`restore_tenant`); other schemas are never touched. The whole database is
dropped and restored in one transaction (`restore_database`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from penguinmails.alerts.services import raise_alert, resolve_alert
from penguinmails.alerts.severity import Severity
from penguinmails.backups import pg
from penguinmails.backups.models import Backup, BackupKind, BackupStatus, VerifyStatus
from penguinmails.backups.services import (
    BackupFailed,
    Progress,
    _quiet,
    fetched,
    get_backup,
    latest,
    tenant_schema,
)
from penguinmails.errors import DomainError

log = logging.getLogger(__name__)

VERIFY_RULE = "backup.verify_failed"
VERIFY_SUBJECT = "backups:verify"


def _lines(progress: Progress) -> Any:
    def on_line(line: str) -> None:
        if "error" in line.lower() or "processing item" in line or "creating TABLE" in line:
            progress(f"  {line}")

    return on_line


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def restore_tenant(
    slug: str, *, backup_id: int | None = None, progress: Progress = _quiet
) -> Backup:
    """Put back one tenant's schema as the backup holds it; no other schema changes.

    1. The backup's schema is restored under a temporary name (`t_<slug>__restored`), in one
       transaction: pg_restore's SQL creates objects under the schema's real name, so the live
       schema steps aside for the length of that transaction and takes its name back before
       the commit. Other sessions go on seeing and using the live schema throughout.
    2. The restored schema's rows are counted and compared with the backup's manifest; on any
       difference it is dropped and the live schema is left alone.
    3. Swap, in one short transaction: live renamed to `__old`, restored renamed to the real
       name, old dropped.
    """
    schema, _ = tenant_schema(slug)
    backup = get_backup(backup_id) if backup_id else latest(kind=BackupKind.TENANT, schema=schema)
    expected = (backup.manifest or {}).get(schema)
    if expected is None:
        raise DomainError(f"Backup #{backup.pk} does not hold schema {schema} (tenant {slug}).")
    restored, live_aside, old = (f"{schema}__{s}"[:63] for s in ("restored", "live", "old"))
    with pg.connect() as conn:
        exists = schema in pg.schemas(conn)
    with fetched(backup, progress) as archive:
        progress(f"restoring schema {schema} from backup #{backup.pk} as {restored}")
        _restore_as(archive, backup, schema, restored, live_aside, exists, progress)
    _check_restored(backup, schema, restored, expected)
    progress(f"restored rows match the backup; swapping {restored} in as {schema}")
    with pg.connect() as conn, conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '60s'")
        if exists:
            conn.execute(f"ALTER SCHEMA {_quote(schema)} RENAME TO {_quote(old)}")
        conn.execute(f"ALTER SCHEMA {_quote(restored)} RENAME TO {_quote(schema)}")
        if exists:
            conn.execute(f"DROP SCHEMA {_quote(old)} CASCADE")
    backup.restored_at = timezone.now()
    Backup.objects.filter(pk=backup.pk).update(restored_at=backup.restored_at)
    progress(f"tenant {slug}: schema {schema} restored from backup #{backup.pk}")
    return backup


def _restore_as(
    archive: Any,
    backup: Backup,
    schema: str,
    restored: str,
    live_aside: str,
    exists: bool,
    progress: Progress,
) -> None:
    before = ["SET LOCAL lock_timeout = '60s'"]
    before += [f"DROP SCHEMA IF EXISTS {_quote(n)} CASCADE" for n in (restored, live_aside)]
    after = [f"ALTER SCHEMA {_quote(schema)} RENAME TO {_quote(restored)}"]
    if exists:
        before.append(f"ALTER SCHEMA {_quote(schema)} RENAME TO {_quote(live_aside)}")
        after.append(f"ALTER SCHEMA {_quote(live_aside)} RENAME TO {_quote(schema)}")
    # A tenant's own archive creates its schema; picked out of a whole-database archive
    # (pg_restore --schema), the schema's own entry is left out, so it is created here.
    picked = schema if backup.kind == BackupKind.FULL else None
    if picked:
        before.append(f"CREATE SCHEMA {_quote(schema)}")
    pg.restore_in_one_transaction(
        archive, before=before, after=after, schema=picked, on_line=_lines(progress)
    )


def _check_restored(backup: Backup, schema: str, restored: str, expected: dict[str, int]) -> None:
    with pg.connect() as conn:
        found = pg.count_rows(conn, restored).get(restored, {})
    differences = _differences({schema: expected}, {schema: found})
    if differences:
        with pg.connect(autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {_quote(restored)} CASCADE")
        raise DomainError(
            f"Restoring backup #{backup.pk} gave other row counts than it recorded "
            f"({'; '.join(differences[:5])}); the live schema {schema} was left as it was."
        )


def restore_database(
    *, backup_id: int | None = None, path: str = "", progress: Progress = _quiet
) -> Backup:
    """Put back the whole database as a full backup holds it (every schema dropped, then the
    backup restored, in one transaction). The backup records themselves are kept as they are
    now, so the history of backups is not rolled back with the data.

    `path` names a file in the configured storage instead of a record: for a new, empty
    database (disaster recovery), where the records are inside the backup itself."""
    if path:
        backup = Backup(
            kind=BackupKind.FULL,
            status=BackupStatus.COMPLETED,
            storage=settings.BACKUP_STORAGE,
            path=path,
            started_at=timezone.now(),
        )
    else:
        backup = get_backup(backup_id) if backup_id else latest(kind=BackupKind.FULL)
    if backup.kind != BackupKind.FULL:
        raise DomainError(
            f"Backup #{backup.pk} holds one tenant's schema; restore it with --tenant."
        )
    records = _records()
    with fetched(backup, progress) as archive:
        with pg.connect() as conn:
            existing = pg.schemas(conn)
            row = conn.execute("SHOW server_version_num").fetchone()
        before = ["SET LOCAL lock_timeout = '60s'"]
        before += [f"DROP SCHEMA {_quote(s)} CASCADE" for s in existing]
        # pg_dump leaves `public` out of a dump (every database has one): made again as new.
        before += ["CREATE SCHEMA public", "GRANT USAGE ON SCHEMA public TO PUBLIC"]
        if row and int(row[0]) >= 140000:  # PostgreSQL 14+: public belongs to this role
            before.append("ALTER SCHEMA public OWNER TO pg_database_owner")
        connections.close_all()  # our own idle connections must not hold the tables
        progress(f"restoring the whole database from backup #{backup.pk} in one transaction")
        pg.restore_in_one_transaction(
            archive, before=before, after=[], schema=None, on_line=_lines(progress)
        )
    if records:  # none (a new or empty database): the records in the backup stand
        _put_back_records(records, restored=backup.pk)
    if backup.pk is None:
        progress(f"database restored from {path}")
        return backup
    progress(f"database restored from backup #{backup.pk} ({backup.started_at:%Y-%m-%d %H:%M} UTC)")
    return get_backup(backup.pk)


def _records() -> list[dict[str, Any]] | None:
    """The backup records as they are now; None on a database without the table (empty)."""
    try:
        return [dict(r) for r in Backup.objects.order_by("pk").values()]
    except DatabaseError:
        return None


def _put_back_records(records: list[dict[str, Any]], *, restored: int | None) -> None:
    now = timezone.now()
    with transaction.atomic():
        Backup.objects.all().delete()
        Backup.objects.bulk_create(
            [Backup(**{**r, "restored_at": now if r["id"] == restored else r["restored_at"]})
             for r in records]
        )  # fmt: skip
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('public.backups_backup', 'id'), "
                "GREATEST((SELECT max(id) FROM public.backups_backup), 1))"
            )


@dataclass
class VerifyResult:
    backup: Backup
    ok: bool
    tables: int = 0
    rows: int = 0
    differences: list[str] = field(default_factory=list)


def _differences(
    expected: dict[str, dict[str, int]], found: dict[str, dict[str, int]]
) -> list[str]:
    out = []
    for schema, tables in sorted(expected.items()):
        for table, rows in sorted(tables.items()):
            got = found.get(schema, {}).get(table)
            if got is None:
                out.append(f"{schema}.{table}: missing (expected {rows} rows)")
            elif got != rows:
                out.append(f"{schema}.{table}: {got} rows, expected {rows}")
    return out


def verify_backup(*, backup_id: int | None = None, progress: Progress = _quiet) -> VerifyResult:
    """Restore the backup (default: the latest whole-database one) into a scratch database,
    compare every table's rows with the manifest, drop the scratch database. A failure raises
    the alert `backup.verify_failed`; a pass resolves it."""
    # A mistyped id is the operator's error, not the backups': no alert for it.
    backup: Backup | None = get_backup(backup_id) if backup_id else None
    try:
        backup = backup or latest(kind=BackupKind.FULL)
        result = _verify(backup, progress)
    except DomainError as exc:
        _alert(backup, [exc.message])
        raise
    except (psycopg.Error, OSError) as exc:  # e.g. no CREATEDB right, disk full
        _alert(backup, [str(exc)])
        raise BackupFailed(f"Verifying failed: {exc}") from exc
    if result.ok:
        resolve_alert(VERIFY_RULE, VERIFY_SUBJECT, note=f"backup #{backup.pk} verified")
    else:
        _alert(backup, result.differences)
    return result


def _verify(backup: Backup, progress: Progress) -> VerifyResult:
    base = str(connections["default"].settings_dict["NAME"])
    scratch = f"{base}_verify_{backup.pk}"[:63]
    status, detail = VerifyStatus.FAILED, ""
    try:
        with fetched(backup, progress) as archive:
            _scratch(scratch, create=True)
            progress(f"restoring backup #{backup.pk} into scratch database {scratch}")
            pg.restore_into(archive, scratch, _lines(progress))
            with pg.connect(scratch) as conn:
                only = backup.tenant_schema or None
                found = pg.count_rows(conn, only)
        differences = _differences(backup.manifest or {}, found)
        result = VerifyResult(
            backup,
            ok=not differences,
            tables=sum(len(t) for t in found.values()),
            rows=sum(sum(t.values()) for t in found.values()),
            differences=differences,
        )
        status = VerifyStatus.PASSED if result.ok else VerifyStatus.FAILED
        detail = "\n".join(differences) or f"{result.tables} tables, {result.rows} rows match"
        return result
    except DomainError as exc:
        detail = exc.message
        raise
    finally:
        _scratch(scratch, create=False)
        Backup.objects.filter(pk=backup.pk).update(
            verify_status=status, verified_at=timezone.now(), verify_detail=detail[:5000]
        )


def _scratch(name: str, *, create: bool) -> None:
    with pg.connect(autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        if create:
            conn.execute(f"CREATE DATABASE {_quote(name)}")


def _alert(backup: Backup | None, problems: list[str]) -> None:
    what = f"backup #{backup.pk}" if backup else "the latest backup"
    raise_alert(
        VERIFY_RULE,
        VERIFY_SUBJECT,
        summary=f"Verifying {what} failed: {problems[0] if problems else 'unknown'}",
        severity=Severity.CRITICAL,
        detail={"backup": backup.pk if backup else None, "problems": problems[:50]},
    )
