"""`manage.py migrate_safely`: backup, migrate under a lock, validate, restore on failure."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from penguinmails.backups.migrate import migrate_safely
from penguinmails.errors import DomainError


class Command(BaseCommand):
    help = (
        "Take a backup, run migrate_schemas (shared, then tenants) under a lock, validate, and "
        "restore the backup if anything fails (exit 1, saying what happened)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--noinput", "--no-input", action="store_true", help="accepted; never asks"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(line: str) -> None:
            self.stderr.write(line)
            self.stderr.flush()

        try:
            outcome = migrate_safely(progress=progress, verbosity=options["verbosity"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"migrated and validated {outcome.schemas} schema(s); backup #{outcome.backup.pk} "
            "taken before"
        )
