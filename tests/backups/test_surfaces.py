"""Backups as staff and tenants meet them: the admin lists them read-only (no add, no change);
a tenant's members never reach them; an old pg_dump is refused before anything starts."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.test import Client

from penguinmails.backups.models import Backup, BackupKind, BackupStatus
from tests.backups.conftest import run
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def test_staff_see_backups_in_the_admin_read_only(cast: Cast) -> None:
    backup = Backup.objects.create(
        kind=BackupKind.TENANT, tenant_slug="acme", tenant_schema="t_acme", reason="manual",
        status=BackupStatus.COMPLETED, storage="dir", path="tenant/acme/x.dump.enc", size=123,
    )  # fmt: skip
    cast.admin.is_staff = cast.admin.is_superuser = True
    cast.admin.save()
    staff: Client = client_for(cast.admin, None)
    listing = staff.get("/admin/backups/backup/")
    assert listing.status_code == 200 and f"/admin/backups/backup/{backup.pk}/" in (
        listing.content.decode()
    )
    page = staff.get(f"/admin/backups/backup/{backup.pk}/change/")
    assert page.status_code == 200 and "tenant/acme/x.dump.enc" in page.content.decode()
    assert staff.get("/admin/backups/backup/add/").status_code == 403
    before = Backup.objects.values().get(pk=backup.pk)
    staff.post(f"/admin/backups/backup/{backup.pk}/change/", {"status": "pruned"})
    assert Backup.objects.values().get(pk=backup.pk) == before


def test_tenant_users_never_reach_backups(cast: Cast) -> None:
    for user, tenant in ((cast.owner, cast.tenant), (cast.outsider, cast.other_tenant)):
        response = client_for(user, tenant).get("/admin/backups/backup/")
        assert response.status_code in (302, 404)  # no admin on tenant hosts, or a login page
        assert b"backups_backup" not in response.content


def test_an_older_pg_dump_than_the_server_is_refused(
    cast: Cast, settings: Any, tmp_path: Path
) -> None:
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    settings.BACKUP_PG_BIN_DIR = str(tmp_path)
    with pytest.raises(CommandError, match=r"pg_dump is version 9 but the server is \d+"):
        run("backup", "create")
    assert not Backup.objects.exists()
