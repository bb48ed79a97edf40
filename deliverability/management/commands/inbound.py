"""`manage.py inbound parse PATH [PATH ...]`: classify message files and print one JSON line each.
`manage.py inbound poll --tenant SLUG [--mailbox ADDRESS]`: poll a tenant's mailboxes now (ops).

Directories are read recursively (a maildir's cur/ and new/ included), files in name order. A
missing path exits non-zero before anything is printed, naming it.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from deliverability.inbound import classify
from deliverability.inbound.parse import MAX_BYTES
from deliverability.models import Mailbox
from deliverability.services.imap_reader import poll_mailbox
from deliverability.services.mailboxes.lifecycle import POLLED_STATUSES
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Inbound mail: `inbound parse PATH [PATH ...]` prints one JSON object per message file; "
        "`inbound poll --tenant SLUG [--mailbox ADDRESS]` reads mailboxes now."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        parse = sub.add_parser("parse", help="Classify message files (or directories of them).")
        parse.add_argument("paths", nargs="+", metavar="PATH")
        parse.add_argument(
            "--details",
            action="store_true",
            help="Add notes (what was cut or repaired), return_date, unsubscribe token.",
        )

        poll = sub.add_parser("poll", help="Poll a tenant's mailboxes now (one run each).")
        poll.add_argument("--tenant", required=True, metavar="SLUG")
        poll.add_argument("--mailbox", metavar="ADDRESS", help="Only this mailbox.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "poll":
            self._poll(options["tenant"], options.get("mailbox"))
            return
        paths = [Path(p) for p in options["paths"]]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"No such file or directory: {', '.join(missing)}")
        for path in _files(paths):
            # Read one byte past the parser's limit: enough to know it was cut, never 20 MB more.
            with path.open("rb") as handle:
                raw = handle.read(MAX_BYTES + 1)
            verdict = classify(raw)
            line: dict[str, Any] = {"file": str(path), **verdict.as_json()}
            if options["details"]:
                line.update(
                    notes=verdict.notes,
                    return_date=verdict.return_date,
                    unsubscribe_token=verdict.unsubscribe_token,
                )
            self.stdout.write(json.dumps(line, ensure_ascii=False))

    def _poll(self, slug: str, address: str | None) -> None:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant {slug!r}.")
        with schema_context(tenant.schema_name):
            boxes = Mailbox.objects.filter(status__in=POLLED_STATUSES).exclude(imap_host="")
            if address:
                boxes = boxes.filter(address=address.strip().lower())
            ids = list(boxes.values_list("pk", flat=True))
        if address and not ids:
            raise CommandError(f"No mailbox {address!r} to read in {slug}.")
        for mailbox_id in ids:
            report = poll_mailbox(tenant, mailbox_id)
            self.stdout.write(json.dumps(asdict(report), ensure_ascii=False))


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            found.append(path)
    return found
