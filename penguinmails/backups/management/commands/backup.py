"""`manage.py backup create|list|prune|verify|restore` (docs/operations.md, docs/runbooks/)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError

from penguinmails.backups.models import Backup
from penguinmails.backups.restore import restore_database, restore_tenant, verify_backup
from penguinmails.backups.services import (
    create_backup,
    fail_interrupted_backups,
    prune_backups,
)
from penguinmails.errors import DomainError


class Command(BaseCommand):
    help = "Encrypted pg_dump backups: create, list, prune, verify, restore."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="dump the whole database or one tenant's schema")
        create.add_argument("--tenant", metavar="SLUG", help="only this tenant's schema")
        create.add_argument("--json", action="store_true", help="the backup's record on stdout")
        listing = sub.add_parser("list", help="the backups, newest first")
        listing.add_argument("--json", action="store_true", help="machine-readable output")
        listing.add_argument("--limit", type=int, default=50)
        listing.add_argument("--tenant", metavar="SLUG", help="only this tenant's backups")
        prune = sub.add_parser("prune", help="delete what retention no longer keeps")
        prune.add_argument("--dry-run", action="store_true", help="only say what would go")
        verify = sub.add_parser("verify", help="restore into a scratch database and compare")
        verify.add_argument("--backup", type=int, metavar="ID", help="default: the latest full")
        restore = sub.add_parser("restore", help="restore one tenant (or, with --yes, all)")
        restore.add_argument("--tenant", metavar="SLUG", help="restore this tenant's schema only")
        restore.add_argument("--backup", type=int, metavar="ID", help="default: the latest")
        restore.add_argument(
            "--yes", action="store_true", help="required to restore the WHOLE database"
        )
        restore.add_argument(
            "--path",
            metavar="KEY",
            help="whole database from this file of the backup storage (no record needed: "
            "for an empty database)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except psycopg.Error as exc:  # a lock timeout, a lost connection: say it, no traceback
            raise CommandError(f"PostgreSQL: {str(exc).strip()}") from exc

    def _progress(self, line: str) -> None:
        self.stderr.write(line)
        self.stderr.flush()

    def do_create(self, options: dict[str, Any]) -> None:
        backup = create_backup(tenant_slug=options["tenant"], progress=self._progress)
        if options["json"]:
            self.stdout.write(json.dumps(_row(backup), sort_keys=True))
            return
        self.stdout.write(f"backup #{backup.pk} completed: {backup.path} ({backup.size} bytes)")

    def do_list(self, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        rows = Backup.objects.all()
        if options["tenant"]:
            rows = rows.filter(tenant_slug=options["tenant"])
        rows = rows[: options["limit"]]
        if options["json"]:
            self.stdout.write(json.dumps([_row(b) for b in rows], sort_keys=True))
            return
        for b in rows:
            what = f"tenant {b.tenant_slug}" if b.tenant_slug else "database"
            self.stdout.write(
                f"#{b.pk:<5} {b.started_at:%Y-%m-%d %H:%M} {what:<20} {b.status:<9} "
                f"{b.size / 1_048_576:>9.1f} MiB  {b.reason:<12} verify={b.verify_status}  "
                f"{b.storage}:{b.path}"
            )

    def do_prune(self, options: dict[str, Any]) -> None:
        if not options["dry_run"]:
            for b in fail_interrupted_backups():
                self.stdout.write(f"#{b.pk} marked failed: {b.error}")
        pruned = prune_backups(dry_run=options["dry_run"])
        verb = "would prune" if options["dry_run"] else "pruned"
        for b in pruned:
            self.stdout.write(f"{verb} #{b.pk} {b.started_at:%Y-%m-%d %H:%M} {b.path}")
        self.stdout.write(f"{len(pruned)} backup(s) {verb}")

    def do_verify(self, options: dict[str, Any]) -> None:
        result = verify_backup(backup_id=options["backup"], progress=self._progress)
        if not result.ok:
            for line in result.differences[:50]:
                self.stderr.write(line)
            raise CommandError(
                f"backup #{result.backup.pk} FAILED verification: "
                f"{len(result.differences)} table(s) differ (alert backup.verify_failed raised)"
            )
        self.stdout.write(
            f"backup #{result.backup.pk} verified: {result.tables} tables, {result.rows} rows match"
        )

    def do_restore(self, options: dict[str, Any]) -> None:
        if options["tenant"]:
            if options["path"]:
                raise CommandError("--path restores the whole database; it takes no --tenant")
            backup = restore_tenant(
                options["tenant"], backup_id=options["backup"], progress=self._progress
            )
            self.stdout.write(f"tenant {options['tenant']} restored from backup #{backup.pk}")
            return
        if not options["yes"]:
            raise CommandError(
                "restore without --tenant replaces the WHOLE database with the backup; "
                "stop the web, worker and beat processes and run it again with --yes "
                "(docs/runbooks/database-restore.md)"
            )
        if options["path"] and options["backup"]:
            raise CommandError("give either --backup or --path, not both")
        backup = restore_database(
            backup_id=options["backup"], path=options["path"] or "", progress=self._progress
        )
        self.stdout.write(
            f"database restored from {f'backup #{backup.pk}' if backup.pk else backup.path}"
        )


def _row(b: Backup) -> dict[str, Any]:
    return {
        "id": b.pk,
        "kind": b.kind,
        "tenant": b.tenant_slug or None,
        "reason": b.reason,
        "status": b.status,
        "storage": b.storage,
        "path": b.path,
        "size": b.size,
        "sha256": b.sha256,
        "started_at": b.started_at.isoformat(),
        "finished_at": b.finished_at.isoformat() if b.finished_at else None,
        "verify_status": b.verify_status,
        "rows": b.rows,
    }
