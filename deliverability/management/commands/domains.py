"""`manage.py domains list SLUG [--json]` and `domains verify SLUG NAME`.

`verify` runs the check now in this process (the same service the queued job runs) and exits
non-zero unless the domain ends verified.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from deliverability.models import DomainStatus, SendingDomain
from deliverability.services.domains import run_check, validate_domain_name
from penguinmails.errors import DomainError
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Sending domains: `domains list SLUG [--json]`, `domains verify SLUG NAME`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        listing = sub.add_parser("list", help="A tenant's domains and their status.")
        listing.add_argument("slug")
        listing.add_argument("--json", action="store_true")
        verify = sub.add_parser("verify", help="Check a domain's DNS records now.")
        verify.add_argument("slug")
        verify.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["slug"], is_template=False).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['slug']!r}.")
        with schema_context(tenant.schema_name):
            if options["subcommand"] == "list":
                self._list(options["json"])
            else:
                self._verify(tenant, options["name"])

    def _list(self, as_json: bool) -> None:
        rows = [
            {
                "id": d.pk,
                "name": d.name,
                "status": d.status,
                "last_checked_at": d.last_checked_at.isoformat() if d.last_checked_at else None,
                "next_check_at": d.next_check_at.isoformat() if d.next_check_at else None,
            }
            for d in SendingDomain.objects.order_by("name")
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No sending domains.")
        for row in rows:
            self.stdout.write(f"{row['id']:>5}  {row['status']:<11} {row['name']}")

    def _verify(self, tenant: Tenant, name: str) -> None:
        try:
            domain_name = validate_domain_name(name)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        domain = SendingDomain.objects.filter(name=domain_name).first()
        if domain is None:
            raise CommandError(f"{tenant.slug} has no domain {domain_name}.")
        try:
            result = run_check(domain.pk, tenant=tenant)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if result is None:
            raise CommandError(f"{domain_name} was removed meanwhile.")
        for check in result.checks:
            line = f"{check.status:<9} {check.record.type:<5} {check.record.name}"
            self.stdout.write(line)
            if not check.ok and check.message:
                self.stdout.write(f"          {check.message}")
        status = DomainStatus(result.domain.status)
        if status != DomainStatus.VERIFIED:
            raise CommandError(f"{domain_name} is {status.label.lower()}.")
        self.stdout.write(f"{domain_name} is verified.")
