"""`manage.py mailboxes list SLUG [--json]`, `mailboxes create SLUG ADDRESS` and
`mailboxes test SLUG ADDRESS`.

`create` makes a mailbox on the tenant's own mail server, through the same service (and the same
plan limits) as the dashboard and API.

`test` runs the live connection test now (the same service the dashboard and API call), prints
each protocol's step and exits non-zero unless both pass.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from deliverability.models import Mailbox
from deliverability.services import mailboxes as service
from penguinmails.errors import DomainError
from tenants.models import Tenant
from tenants.services.access import operator_principal


class Command(BaseCommand):
    help = "Mailboxes: `list SLUG [--json]`, `create SLUG ADDRESS`, `test SLUG ADDRESS`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        listing = sub.add_parser("list", help="A tenant's mailboxes with status and health.")
        listing.add_argument("slug")
        listing.add_argument("--json", action="store_true")
        create = sub.add_parser("create", help="Create a mailbox on the tenant's mail server.")
        create.add_argument("slug")
        create.add_argument("address", help="local@domain; the domain must be a sending domain")
        create.add_argument("--name", default="", help="Display name")
        create.add_argument("--daily-limit", type=int, default=None)
        test = sub.add_parser("test", help="Test a mailbox's SMTP and IMAP connection now.")
        test.add_argument("slug")
        test.add_argument("address")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["slug"], is_template=False).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['slug']!r}.")
        with schema_context(tenant.schema_name):
            if options["subcommand"] == "list":
                self._list(options["json"])
            elif options["subcommand"] == "create":
                self._create(tenant, options)
            else:
                self._test(tenant, options["address"])

    def _list(self, as_json: bool) -> None:
        rows = [
            {
                "id": m.pk,
                "address": m.address,
                "kind": m.kind,
                "status": m.status,
                "daily_limit": m.daily_limit,
                "sent_today": service.sent_today(m),
                "last_test_at": m.last_test_at.isoformat() if m.last_test_at else None,
                "last_test_ok": m.last_test_ok,
                "last_error": m.last_error,
                "consecutive_failures": m.consecutive_failures,
                "paused_reason": m.paused_reason,
            }
            for m in Mailbox.objects.order_by("address")
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No mailboxes.")
        for row in rows:
            usage = f"{row['sent_today']}/{row['daily_limit']}"
            self.stdout.write(f"{row['id']:>5}  {row['status']:<9} {usage:>9}  {row['address']}")

    def _create(self, tenant: Tenant, options: dict[str, Any]) -> None:
        local_part, _, domain = options["address"].strip().partition("@")
        if not local_part or not domain:
            raise CommandError("ADDRESS must look like local@domain.")
        try:
            mailbox = service.create_mailbox(
                operator_principal(tenant),
                local_part=local_part,
                domain=domain,
                display_name=options["name"],
                daily_limit=options["daily_limit"],
            )
        except DomainError as exc:
            fields = "; ".join(
                f"{k}: {' '.join(v)}" for k, v in exc.fields.items() if v != [exc.message]
            )
            raise CommandError(f"{exc.message} {fields}".strip()) from None
        self.stdout.write(f"{mailbox.address}: {mailbox.status} (set up by a job)")

    def _test(self, tenant: Tenant, address: str) -> None:
        mailbox = Mailbox.objects.filter(address=address.strip().lower()).first()
        if mailbox is None:
            raise CommandError(f"{tenant.slug} has no mailbox {address}.")
        try:
            report = service.test_mailbox(None, mailbox)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        for result in (report.smtp, report.imap):
            if result is not None:
                self.stdout.write(f"{result.protocol:<5} {result.step:<8} {result.message}")
        if not report.ok:
            raise CommandError(report.summary())
        self.stdout.write(f"{mailbox.address}: {report.summary()}")
