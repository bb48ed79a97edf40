"""Backups are taken with the real pg_dump/pg_restore/psql against the test database, so the
tests that dump run in transactional mode (a dump sees only committed rows)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from campaigns.models import Lead


@pytest.fixture
def backup_dir(settings: Any, tmp_path: Path) -> Path:
    settings.BACKUP_STORAGE = "dir"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_WORK_DIR = str(tmp_path / "work")
    return Path(settings.BACKUP_DIR)


def run(*args: str) -> tuple[str, str]:
    """`manage.py <args>` in this process: (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def add_leads(schema: str, *emails: str) -> None:
    with schema_context(schema):
        Lead.objects.bulk_create([Lead(email=e) for e in emails])


def lead_emails(schema: str, prefix: str) -> set[str]:
    with schema_context(schema):
        return set(Lead.objects.filter(email__startswith=prefix).values_list("email", flat=True))


def table_exists(schema: str, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f'"{schema}"."{table}"'])
        return cursor.fetchone()[0] is not None


@pytest.fixture
def subprocess_env(backup_dir: Path) -> Iterator[dict[str, str]]:
    """The environment of a `manage.py` subprocess on this test database."""
    conf = connection.settings_dict
    url = f"postgres://{conf['USER']}"
    if conf.get("PASSWORD"):
        url += f":{conf['PASSWORD']}"
    url += f"@{conf.get('HOST') or '127.0.0.1'}:{conf.get('PORT') or 5432}/{conf['NAME']}"
    yield {
        **os.environ,
        "DATABASE_URL": url,
        "BACKUP_DIR": str(backup_dir),
        "BACKUP_STORAGE": "dir",
    }
