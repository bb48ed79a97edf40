"""`manage.py migrate_safely`: a run with a deliberately failing migration puts the database
back (a marker row deleted by the migration before it failed is back, the table it created is
gone, its migration record too) and exits non-zero saying so; two runs never overlap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.core.management.base import CommandError
from django.db import connection

from penguinmails.backups import pg
from penguinmails.backups.migrate import LOCK_KEY
from penguinmails.backups.models import Backup, BackupStatus
from tests.backups.conftest import run, table_exists
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _sql(statement: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return cursor.fetchall() if cursor.description else []


def test_a_failing_migration_restores_the_database(
    cast: Cast, subprocess_env: dict[str, str]
) -> None:
    _sql("CREATE TABLE public.o3_marker (v text)")
    try:
        _sql("INSERT INTO public.o3_marker VALUES ('written before')")
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate_safely", "-v", "0"],
            cwd=ROOT,
            env={**subprocess_env, "DJANGO_SETTINGS_MODULE": "tests.backups.failing_settings"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        connection.close()  # the restore replaced every table this connection knew
        assert done.returncode != 0, done.stdout + done.stderr
        assert "deliberate failure in failapp 0002" in done.stderr
        assert "the database was restored from backup #" in done.stderr
        assert _sql("SELECT v FROM public.o3_marker") == [("written before",)]
        assert not table_exists("public", "failapp_partial")
        assert _sql("SELECT count(*) FROM django_migrations WHERE app = 'failapp'") == [(0,)]
        backup = Backup.objects.get(reason="pre-migrate")
        assert backup.status == BackupStatus.COMPLETED and backup.restored_at is not None
    finally:
        _sql("DROP TABLE IF EXISTS public.o3_marker")
        _sql("DROP TABLE IF EXISTS public.failapp_partial")
        _sql("DELETE FROM django_migrations WHERE app = 'failapp'")


def test_it_migrates_and_validates_when_nothing_fails(cast: Cast, backup_dir: Path) -> None:
    out, progress = run("migrate_safely", "-v", "0")
    assert "migrated and validated" in out
    assert "validated: system checks, public" in progress
    assert Backup.objects.get().reason == "pre-migrate"


def test_a_second_run_refuses_while_one_holds_the_lock(cast: Cast, backup_dir: Path) -> None:
    with psycopg.connect(**pg.db_settings(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        with pytest.raises(CommandError, match="Another migrate_safely is running .*pid"):
            run("migrate_safely")
    assert not Backup.objects.exists()  # refused before taking a backup


def test_validation_finds_a_missing_column_and_says_so(cast: Cast, backup_dir: Path) -> None:
    globex = cast.other_tenant.schema_name
    _sql(f'ALTER TABLE "{globex}".campaigns_lead DROP COLUMN title')
    try:
        with pytest.raises(CommandError, match='during validation .*"title" does not exist'):
            run("migrate_safely", "-v", "0")
        connection.close()
        assert Backup.objects.get(reason="pre-migrate").restored_at is not None
    finally:
        _sql(
            f'ALTER TABLE "{globex}".campaigns_lead ADD COLUMN title varchar(200) NOT NULL '
            "DEFAULT ''"
        )
        _sql(f'ALTER TABLE "{globex}".campaigns_lead ALTER COLUMN title DROP DEFAULT')
