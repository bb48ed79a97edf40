"""Backup, damage, restore, through `manage.py backup` against the real test database: one
tenant's schema comes back while the other tenant is untouched; verify compares row counts and
alerts when they differ; retention prunes files; bad input exits non-zero saying why."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from penguinmails.alerts.models import Alert
from penguinmails.alerts.severity import AlertState
from penguinmails.backups.crypto import EncryptingReader, decrypt_stream
from penguinmails.backups.models import Backup, BackupKind, BackupStatus, VerifyStatus
from tests.backups.conftest import add_leads, lead_emails, run, table_exists
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_restores_one_tenant_and_leaves_the_other_untouched(
    cast: Cast, backup_dir: Path
) -> None:
    acme, globex = cast.tenant.schema_name, cast.other_tenant.schema_name
    add_leads(acme, "r1-a@example.com", "r1-b@example.com")
    add_leads(globex, "r1-g@example.com")

    out, progress = run("backup", "create", "--tenant", "acme")
    backup = Backup.objects.get()
    assert backup.kind == BackupKind.TENANT and backup.status == BackupStatus.COMPLETED
    assert f"backup #{backup.pk} completed" in out and "table" in progress
    stored = backup_dir / backup.path
    assert stored.stat().st_size == backup.size
    assert b"r1-a@example.com" not in stored.read_bytes()  # encrypted at rest
    assert backup.manifest[acme]["campaigns_lead"] >= 2 and globex not in backup.manifest

    # After the backup: acme loses its leads table, both tenants gain a lead.
    add_leads(acme, "r1-late@example.com")
    add_leads(globex, "r1-g-late@example.com")
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{acme}".campaigns_lead CASCADE')
    assert not table_exists(acme, "campaigns_lead")

    out, _ = run("backup", "restore", "--tenant", "acme")
    assert f"tenant acme restored from backup #{backup.pk}" in out
    assert lead_emails(acme, "r1-") == {"r1-a@example.com", "r1-b@example.com"}
    assert lead_emails(globex, "r1-") == {"r1-g@example.com", "r1-g-late@example.com"}
    with connection.cursor() as cursor:  # no temporary schema is left behind
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [f"{acme}\\_\\_%"])
        assert cursor.fetchall() == []
    assert Backup.objects.get().restored_at is not None


def test_it_restores_a_tenant_out_of_a_whole_database_backup(cast: Cast, backup_dir: Path) -> None:
    acme, globex = cast.tenant.schema_name, cast.other_tenant.schema_name
    add_leads(acme, "r2-a@example.com")
    run("backup", "create")
    full = Backup.objects.get()
    assert full.kind == BackupKind.FULL and {"public", acme, globex} <= set(full.manifest)
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{acme}".campaigns_lead')  # noqa: S608 - our schema
    add_leads(globex, "r2-g@example.com")

    run("backup", "restore", "--tenant", "acme", "--backup", str(full.pk))
    assert lead_emails(acme, "r2-") == {"r2-a@example.com"}
    assert lead_emails(globex, "r2-") == {"r2-g@example.com"}


def test_verify_passes_then_fails_with_an_alert_then_resolves(cast: Cast, backup_dir: Path) -> None:
    add_leads(cast.tenant.schema_name, "r3-a@example.com")
    run("backup", "create")
    backup = Backup.objects.get()

    out, _ = run("backup", "verify")
    assert f"backup #{backup.pk} verified" in out
    backup.refresh_from_db()
    assert backup.verify_status == VerifyStatus.PASSED
    with connection.cursor() as cursor:  # the scratch database is gone
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", ["%_verify_%"])
        assert cursor.fetchone()[0] == 0

    # The record says one more lead than the dump holds: verification must notice.
    manifest = backup.manifest
    manifest[cast.tenant.schema_name]["campaigns_lead"] += 1
    Backup.objects.filter(pk=backup.pk).update(manifest=manifest)
    with pytest.raises(CommandError, match="FAILED verification"):
        run("backup", "verify")
    alert = Alert.objects.get(rule="backup.verify_failed")
    assert alert.state == AlertState.FIRING and "campaigns_lead" in alert.summary
    assert Backup.objects.get().verify_status == VerifyStatus.FAILED

    manifest[cast.tenant.schema_name]["campaigns_lead"] -= 1
    Backup.objects.filter(pk=backup.pk).update(manifest=manifest)
    run("backup", "verify", "--backup", str(backup.pk))
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_a_damaged_file_fails_verify_and_restore(cast: Cast, backup_dir: Path) -> None:
    run("backup", "create", "--tenant", "globex")
    backup = Backup.objects.get()
    path = backup_dir / backup.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="fails authentication|checksum"):
        run("backup", "restore", "--tenant", "globex")
    with pytest.raises(CommandError, match="fails authentication|checksum"):
        run("backup", "verify", "--backup", str(backup.pk))
    assert Alert.objects.filter(rule="backup.verify_failed", state=AlertState.FIRING).exists()


def test_list_and_prune_keep_what_retention_says(cast: Cast, backup_dir: Path, settings) -> None:
    run("backup", "create", "--tenant", "globex")
    created = json.loads(run("backup", "create", "--tenant", "globex", "--json")[0])
    old, new = Backup.objects.order_by("pk")
    assert created["id"] == new.pk and created["sha256"] == new.sha256
    # The first one is made a day older: two days, one backup each.
    Backup.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=1))
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 1, 0, 0

    out, _ = run("backup", "prune", "--dry-run")
    assert f"would prune #{old.pk}" in out and (backup_dir / old.path).exists()
    out, _ = run("backup", "prune")
    assert "1 backup(s) pruned" in out
    assert not (backup_dir / old.path).exists() and (backup_dir / new.path).exists()
    listed = json.loads(run("backup", "list", "--json")[0])
    assert [(r["id"], r["status"]) for r in listed] == [(new.pk, "completed"), (old.pk, "pruned")]
    assert json.loads(run("backup", "list", "--json", "--tenant", "acme")[0]) == []


def test_bad_input_exits_non_zero_saying_why(cast: Cast, backup_dir: Path) -> None:
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        run("backup", "create", "--tenant", "nope")
    with pytest.raises(CommandError, match="No completed backup"):
        run("backup", "restore", "--tenant", "acme")
    with pytest.raises(CommandError, match="No backup #999999"):
        run("backup", "verify", "--backup", "999999")
    assert not Alert.objects.exists()  # an operator's typo is not a backup problem
    with pytest.raises(CommandError, match="--yes"):
        run("backup", "restore")
    run("backup", "create", "--tenant", "globex")
    globex_backup = Backup.objects.get()
    with pytest.raises(CommandError, match="does not hold schema t_acme"):
        run("backup", "restore", "--tenant", "acme", "--backup", str(globex_backup.pk))
    with pytest.raises(CommandError, match="one tenant's schema; restore it with --tenant"):
        run("backup", "restore", "--yes", "--backup", str(globex_backup.pk))


def test_whole_database_restore_by_path_without_a_record(cast: Cast, backup_dir: Path) -> None:
    acme = cast.tenant.schema_name
    add_leads(acme, "r4-a@example.com")
    run("backup", "create")
    key = Backup.objects.get().path
    # As on a new server: no record of the backup, and the data has moved on since.
    Backup.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{acme}".campaigns_lead')  # noqa: S608 - our schema
        cursor.execute("CREATE TABLE public.r4_after_backup (id int)")

    out, _ = run("backup", "restore", "--yes", "--path", key)
    assert f"database restored from {key}" in out
    assert lead_emails(acme, "r4-") == {"r4-a@example.com"}
    assert not table_exists("public", "r4_after_backup")
    assert list(Backup.objects.values_list("path", "status")) == [("", BackupStatus.RUNNING)]


def test_a_restore_that_does_not_match_its_manifest_leaves_the_tenant_alone(
    cast: Cast, backup_dir: Path
) -> None:
    acme = cast.tenant.schema_name
    add_leads(acme, "r5-a@example.com")
    run("backup", "create", "--tenant", "acme")
    backup = Backup.objects.get()
    manifest = backup.manifest
    manifest[acme]["campaigns_lead"] += 1  # the record promises a row the dump does not hold
    Backup.objects.filter(pk=backup.pk).update(manifest=manifest)
    add_leads(acme, "r5-late@example.com")

    with pytest.raises(CommandError, match="other row counts .* left as it was"):
        run("backup", "restore", "--tenant", "acme")
    assert lead_emails(acme, "r5-") == {"r5-a@example.com", "r5-late@example.com"}
    assert not table_exists(f"{acme}__restored", "campaigns_lead")


def test_a_dump_that_breaks_half_way_leaves_the_database_as_it_was(
    cast: Cast, backup_dir: Path
) -> None:
    """pg_restore failing in the middle (here: a dump cut in half, encrypted as a valid backup
    file) must not commit what psql had read so far: every schema is still there."""
    acme = cast.tenant.schema_name
    add_leads(acme, "r6-a@example.com")
    run("backup", "create")
    backup = Backup.objects.get()
    dump = backup_dir / "plain.dump"
    with (
        (backup_dir / backup.path).open("rb") as source,
        dump.open("wb") as out,
    ):
        decrypt_stream(source, out)
    cut = dump.read_bytes()[: dump.stat().st_size // 2]
    sealed = EncryptingReader(io.BytesIO(cut)).read()
    (backup_dir / backup.path).write_bytes(sealed)
    Backup.objects.filter(pk=backup.pk).update(
        sha256=hashlib.sha256(sealed).hexdigest(), size=len(sealed)
    )
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE public.r6_after_backup (id int)")

    with pytest.raises(CommandError, match="pg_restore failed"):
        run("backup", "restore", "--yes")
    assert table_exists("public", "r6_after_backup")  # nothing was dropped: rolled back
    assert lead_emails(acme, "r6-") == {"r6-a@example.com"}
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE public.r6_after_backup")


def test_prune_marks_a_backup_left_running_by_a_dead_process_failed(
    cast: Cast, backup_dir: Path
) -> None:
    started = timezone.now() - timedelta(hours=25)
    stuck = Backup.objects.create(
        kind=BackupKind.FULL, status=BackupStatus.RUNNING, storage="dir", started_at=started
    )
    recent = Backup.objects.create(kind=BackupKind.FULL, status=BackupStatus.RUNNING, storage="dir")
    partial = backup_dir / "full" / f"{started:%Y%m%dT%H%M%SZ}-{stuck.pk}.dump.enc.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half a dump")

    out, _ = run("backup", "prune")
    assert f"#{stuck.pk} marked failed: interrupted" in out
    stuck.refresh_from_db()
    recent.refresh_from_db()
    assert stuck.status == BackupStatus.FAILED and recent.status == BackupStatus.RUNNING
    assert not partial.exists()
