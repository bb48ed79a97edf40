"""`manage.py jobs`: status, retry, cancel and purge of the durable job queue."""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils import timezone

from penguinmails.errors import DomainError
from penguinmails.models import Job
from penguinmails.queue import services
from penguinmails.queue.health import queue_metrics


class Command(BaseCommand):
    help = "Inspect and operate the job queue (status, retry, cancel, purge)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        status = sub.add_parser("status", help="depth by queue and status, oldest age, dead")
        status.add_argument("--json", action="store_true", help="machine-readable output")
        retry = sub.add_parser("retry", help="retry one dead/cancelled job, or all dead jobs")
        retry.add_argument("job_id", nargs="?", type=int)
        retry.add_argument("--dead", action="store_true", help="retry every dead job")
        cancel = sub.add_parser("cancel", help="cancel a job that has not started")
        cancel.add_argument("job_id", type=int)
        purge = sub.add_parser("purge", help="delete completed jobs")
        purge.add_argument("--completed-before", required=True, metavar="DATE")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def do_status(self, options: dict[str, Any]) -> None:
        by_status = dict(
            Job.objects.values_list("status").annotate(n=Count("pk")).order_by("status")
        )
        report = {"by_status": by_status, **queue_metrics()}
        report["healthy"] = report.pop("ok")
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        for key, value in report.items():
            self.stdout.write(f"{key}: {value}")

    def do_retry(self, options: dict[str, Any]) -> None:
        if options["dead"] == (options["job_id"] is not None):
            raise CommandError("give either a job id or --dead")
        if options["dead"]:
            self.stdout.write(f"{services.retry_dead_jobs()} dead job(s) queued again")
            return
        job = services.retry_job(services.get_job(options["job_id"]))
        self.stdout.write(f"job {job.pk} queued again")

    def do_cancel(self, options: dict[str, Any]) -> None:
        job = services.cancel_job(services.get_job(options["job_id"]))
        self.stdout.write(f"job {job.pk} cancelled")

    def do_purge(self, options: dict[str, Any]) -> None:
        raw = options["completed_before"]
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            raise CommandError(
                f"--completed-before takes a date like 2025-01-31, not {raw!r}"
            ) from None
        before = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
        if before > timezone.now():
            raise CommandError("--completed-before must not be in the future")
        self.stdout.write(f"{services.purge_completed(before=before)} completed job(s) deleted")
