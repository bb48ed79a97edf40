"""`manage.py leads import FILE --tenant SLUG [--list NAME] [--duplicates update|skip]
[--check-mx] [--mapping JSON]` and `manage.py leads export --tenant SLUG [--output FILE]`.

`import` stores the file and enqueues the same `leads.import` job as the dashboard, then runs it
in this process through the queue runner (a worker that claimed it first runs it instead) and
prints the counts as they move. It exits non-zero when the file is unusable or the import fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django_tenants.utils import schema_context

from campaigns.models import DuplicatePolicy, ImportStatus, LeadImport
from campaigns.services import leads
from penguinmails.errors import DomainError
from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from tenants.models import Tenant
from tenants.services.access import operator_principal


class Command(BaseCommand):
    help = "Leads: `leads import FILE --tenant SLUG`, `leads export --tenant SLUG`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        imp = sub.add_parser("import", help="Import a CSV file of leads, printing progress.")
        imp.add_argument("file")
        imp.add_argument("--tenant", required=True, help="The tenant's slug.")
        imp.add_argument("--list", dest="list_name", help="Add every imported lead to this list.")
        imp.add_argument(
            "--duplicates", choices=DuplicatePolicy.values, default=DuplicatePolicy.UPDATE
        )
        imp.add_argument("--check-mx", action="store_true", help="Ask DNS for each domain's MX.")
        imp.add_argument("--mapping", help='JSON: {"CSV header": "email" | ... | "custom:key"}')
        imp.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
        exp = sub.add_parser("export", help="Write a tenant's leads as CSV.")
        exp.add_argument("--tenant", required=True)
        exp.add_argument("--output", help="A file (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"], is_template=False).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        if options["subcommand"] == "export":
            self._export(tenant, options["output"])
        else:
            self._import(tenant, options)

    def _export(self, tenant: Tenant, output: str | None) -> None:
        with schema_context(tenant.schema_name):
            rows = leads.export_csv(leads.list_leads(operator_principal(tenant)))
            if output:
                with open(output, "w", encoding="utf-8", newline="") as out:
                    out.writelines(rows)
            else:
                for row in rows:
                    self.stdout.write(row, ending="")

    def _import(self, tenant: Tenant, options: dict[str, Any]) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}.")
        mapping = None
        if options["mapping"]:
            try:
                mapping = json.loads(options["mapping"])
            except ValueError:
                raise CommandError("--mapping is not JSON.") from None
        with schema_context(tenant.schema_name), path.open("rb") as stream:
            try:
                created = leads.create_import(
                    operator_principal(tenant),
                    upload=stream,
                    filename=path.name,
                    mapping=mapping,
                    duplicates=options["duplicates"],
                    list_name=options["list_name"],
                    check_mx=options["check_mx"],
                )
            except DomainError as exc:
                raise CommandError(f"{path.name}: {exc.message}") from None
        self.stdout.write(f"Import {created.pk} of {path.name} queued as job {created.job_id}.")
        final = self._run_and_watch(tenant, created, options["interval"])
        self.stdout.write(
            f"{final.get_status_display()}: {final.processed} rows, {final.created} created, "
            f"{final.updated} updated, {final.skipped} skipped, {final.failed} failed."
        )
        if final.failed or final.skipped:
            self.stdout.write(
                f"Rows not imported: GET /api/v1/leads/imports/{final.pk}/errors "
                f"or the import's page in the dashboard."
            )
        if final.status != ImportStatus.COMPLETED:
            raise CommandError(final.error_message or "The import did not complete.")

    def _run_and_watch(self, tenant: Tenant, created: LeadImport, interval: float) -> LeadImport:
        job_id = created.job_id
        assert job_id is not None

        def work() -> None:
            try:
                runner.run(job_id, worker_id=f"leads-command-{time.time():.0f}")
            finally:
                connection.close()

        thread = threading.Thread(target=work, name="leads-import", daemon=True)
        thread.start()
        last: tuple[int, ...] = ()
        while True:
            with schema_context(tenant.schema_name):
                current = LeadImport.objects.get(pk=created.pk)
            counts = (current.processed, current.created, current.updated, current.skipped)
            if counts != last and current.total_rows is not None:
                last = counts
                self.stdout.write(
                    f"{current.processed}/{current.total_rows} rows ({current.percent}%): "
                    f"{current.created} created, {current.updated} updated, "
                    f"{current.skipped} skipped, {current.failed} failed"
                )
                sys.stdout.flush()
            if current.finished:
                thread.join(timeout=5)
                return current
            if not thread.is_alive():
                job = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
                if job in (JobStatus.COMPLETED, JobStatus.DEAD, JobStatus.CANCELLED):
                    return current  # the job ended without finishing the import
            # A worker that claimed the job first runs it: keep watching until it settles.
            time.sleep(interval if thread.is_alive() else max(interval, 1.0))
