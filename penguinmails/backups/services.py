"""Taking, listing and pruning backups (docs/operations.md, "Backups and migrations").

`create_backup` dumps in one exported snapshot: the row counts of every table are read in the
same snapshot pg_dump reads, so the manifest is exactly what the dump holds and `verify` can
compare a restore against it table by table.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import get_tenant_model

from penguinmails import states
from penguinmails.backups import pg, retention
from penguinmails.backups.crypto import (
    BackupCorrupt,
    EncryptingReader,
    current_key_id,
    decrypt_stream,
)
from penguinmails.backups.models import Backup, BackupKind, BackupStatus
from penguinmails.backups.storage import get_storage
from penguinmails.errors import DomainError, NotFound

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
PROGRESS_EVERY = 16 * 1024 * 1024  # bytes between two progress lines


class BackupFailed(DomainError):
    status_code = 503
    code = "backup_failed"


def _quiet(_: str) -> None:
    pass


class _Counting:
    """A readable stream that hashes and counts what passes through it and reports progress."""

    def __init__(self, inner: Any, progress: Progress, verb: str) -> None:
        self.inner, self.progress, self.verb = inner, progress, verb
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._next = PROGRESS_EVERY

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.sha256.update(data)
        self.size += len(data)
        if self.size >= self._next:
            self.progress(f"{self.verb} {self.size / 1_048_576:.0f} MiB")
            self._next += PROGRESS_EVERY
        return bytes(data)


def tenant_schema(slug: str) -> tuple[str, str]:
    """(schema, slug) of the tenant with this slug; NotFound naming it otherwise."""
    tenant = get_tenant_model().objects.filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"No tenant with slug {slug!r}.")
    return str(tenant.schema_name), slug


def _key(backup: Backup) -> str:
    stamp = backup.started_at.strftime("%Y%m%dT%H%M%SZ")
    series = f"tenant/{backup.tenant_slug}" if backup.kind == BackupKind.TENANT else "full"
    return f"{series}/{stamp}-{backup.pk}.dump.enc"


def create_backup(
    *, tenant_slug: str | None = None, reason: str = "manual", progress: Progress = _quiet
) -> Backup:
    """Dump the whole database (or one tenant's schema), encrypted, into the backup storage."""
    schema, slug = tenant_schema(tenant_slug) if tenant_slug else ("", "")
    client, server = pg.check_versions()
    storage = get_storage()
    backup = Backup.objects.create(
        kind=BackupKind.TENANT if schema else BackupKind.FULL,
        tenant_schema=schema,
        tenant_slug=slug,
        reason=reason,
        storage=storage.name,
        key_id=current_key_id(),
    )
    key = _key(backup)
    progress(f"backup #{backup.pk}: pg_dump {client} (server {server}) to {storage.where(key)}")
    try:
        manifest, size, digest = _dump(schema, storage, key, progress)
    except (DomainError, OSError, psycopg.Error) as exc:
        with contextlib.suppress(Exception):
            storage.delete(key)
        message = getattr(exc, "message", None) or str(exc)
        states.transition(
            backup, BackupStatus.FAILED, reason=message[:900], error=message,
            finished_at=timezone.now(), updated_at=timezone.now(),
        )  # fmt: skip
        if isinstance(exc, DomainError):
            raise
        raise BackupFailed(f"Backup #{backup.pk} failed: {message}") from exc
    tables = sum(len(t) for t in manifest.values())
    states.transition(
        backup,
        BackupStatus.COMPLETED,
        reason=f"{size} bytes, {tables} tables",
        path=key,
        size=size,
        sha256=digest,
        manifest=manifest,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    progress(
        f"backup #{backup.pk}: done, {size / 1_048_576:.1f} MiB, {tables} tables, "
        f"{backup.rows} rows"
    )
    return backup


def _dump(
    schema: str, storage: Any, key: str, progress: Progress
) -> tuple[dict[str, dict[str, int]], int, str]:
    with pg.connect() as conn:
        # One snapshot for the counts and the dump: pg_dump imports the exported one.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        manifest = pg.count_rows(conn, schema or None)
        if schema and schema not in manifest:
            raise NotFound(f"Schema {schema} does not exist in the database.")
        tables = iter(range(1, 10**9))

        def table_line(line: str) -> None:
            if "dumping contents of table" in line:
                progress(f"  table {next(tables)}: {line.split('table', 1)[1].strip()}")

        with pg.dump(snapshot=str(row[0]), schema=schema or None, on_line=table_line) as dump:
            stream = _Counting(EncryptingReader(dump.process.stdout), progress, "stored")  # type: ignore[arg-type]
            storage.put(key, stream)  # type: ignore[arg-type]
            dump.finish("pg_dump")
    return manifest, stream.size, stream.sha256.hexdigest()


@contextlib.contextmanager
def fetched(backup: Backup, progress: Progress = _quiet) -> Iterator[Path]:
    """The backup's plaintext dump in a temporary file (checksum checked), removed afterwards."""
    if backup.status != BackupStatus.COMPLETED:
        raise DomainError(f"Backup #{backup.pk} is {backup.status}: only a completed one restores.")
    storage = get_storage(backup.storage)
    workdir = Path(settings.BACKUP_WORK_DIR) if settings.BACKUP_WORK_DIR else None
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pm-restore-", dir=workdir) as folder:
        target = Path(folder) / "backup.dump"
        progress(f"backup #{backup.pk}: reading {storage.where(backup.path)}")
        with storage.open(backup.path) as source, open(target, "wb") as out:
            counting = _Counting(source, progress, "read")
            decrypt_stream(counting, out)  # type: ignore[arg-type]
            _drain(counting)
        # A file restored by path has no record to check against (the records are in the
        # database being restored); its records' authentication still guards it.
        if backup.sha256 and counting.sha256.hexdigest() != backup.sha256:
            raise BackupCorrupt(
                f"Backup #{backup.pk}'s file does not match its recorded checksum (sha256)."
            )
        yield target


def _drain(stream: Any) -> None:
    while stream.read(1024 * 1024):
        pass


def latest(*, kind: str = BackupKind.FULL, schema: str = "") -> Backup:
    rows = Backup.objects.filter(status=BackupStatus.COMPLETED)
    if kind == BackupKind.FULL:
        found = rows.filter(kind=BackupKind.FULL).first()
    else:
        # A tenant's schema is in its own backups and in every whole-database one.
        found = next(
            (
                b
                for b in rows.filter(kind__in=[BackupKind.FULL, BackupKind.TENANT])
                if (b.kind == BackupKind.TENANT and b.tenant_schema == schema)
                or (b.kind == BackupKind.FULL and schema in (b.manifest or {}))
            ),
            None,
        )
    if found is None:
        what = f"of schema {schema}" if schema else "of the whole database"
        raise NotFound(f"No completed backup {what}.")
    return found


def get_backup(backup_id: int) -> Backup:
    found = Backup.objects.filter(pk=backup_id).first()
    if found is None:
        raise NotFound(f"No backup #{backup_id}.")
    return found


def prune_backups(*, dry_run: bool = False) -> list[Backup]:
    """Delete the files retention does not keep (BACKUP_KEEP_DAILY/WEEKLY/MONTHLY) and mark
    their records pruned. Each series (whole database; each tenant) is kept separately."""
    completed = list(Backup.objects.filter(status=BackupStatus.COMPLETED))
    series: dict[tuple[str, str], list[Backup]] = {}
    for backup in completed:
        series.setdefault((backup.kind, backup.tenant_schema), []).append(backup)
    pruned = []
    for members in series.values():
        keep = retention.kept(
            [(b.pk, b.started_at) for b in members],
            daily=settings.BACKUP_KEEP_DAILY,
            weekly=settings.BACKUP_KEEP_WEEKLY,
            monthly=settings.BACKUP_KEEP_MONTHLY,
        )
        pruned += [b for b in members if b.pk not in keep]
    if dry_run:
        return pruned
    for backup in pruned:
        get_storage(backup.storage).delete(backup.path)
        with transaction.atomic():
            states.transition(
                backup, BackupStatus.PRUNED, reason="retention", updated_at=timezone.now()
            )
    return pruned


INTERRUPTED_AFTER = timedelta(hours=24)


def fail_interrupted_backups() -> list[Backup]:
    """Backups still `running` a day after they started belong to a process that died (a
    worker killed, a machine lost): mark them failed and delete what they left in storage."""
    stale = list(
        Backup.objects.filter(
            status=BackupStatus.RUNNING, started_at__lt=timezone.now() - INTERRUPTED_AFTER
        )
    )
    for backup in stale:
        with contextlib.suppress(Exception):  # a storage that is down must not stop the rest
            get_storage(backup.storage).delete(_key(backup))
        message = "interrupted: not finished 24 hours after it started"
        states.transition(
            backup, BackupStatus.FAILED, reason=message, error=message,
            finished_at=timezone.now(), updated_at=timezone.now(),
        )  # fmt: skip
    return stale
