"""`manage.py audit list SLUG [--actor A] [--action X] [--source S] [--since D] [--until D]
[--limit N] [--json]`: one tenant's audit log, newest first, as its owner sees it (docs/audit.md).

Ops read it with owner-level rights in that tenant (tenants.services.access.operator_principal).
An unknown tenant or a bad filter exits non-zero saying why.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser, ArgumentTypeError
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.models import AuditSource
from tenants.services.access import operator_principal
from tenants.services.audit import LogFilter, tenant_log
from tenants.services.tenancy import real_tenants


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ArgumentTypeError(f"{value!r} is not a day (YYYY-MM-DD).") from exc


class Command(BaseCommand):
    help = "Show one tenant's audit log, newest first (docs/audit.md)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        listing = sub.add_parser("list", help="one tenant's events")
        listing.add_argument("slug")
        listing.add_argument("--actor", default="", help="an address")
        listing.add_argument("--action", default="", help='a name, or a prefix ending in "."')
        listing.add_argument("--source", default="", choices=["", *AuditSource.values])
        listing.add_argument("--since", type=_day, help="first day, YYYY-MM-DD (UTC)")
        listing.add_argument("--until", type=_day, help="last day, YYYY-MM-DD (UTC)")
        listing.add_argument("--limit", type=int, default=50)
        listing.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = real_tenants().filter(slug=options["slug"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['slug']!r}.")
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        since, until = options["since"], options["until"]
        if since and until and since > until:
            raise CommandError("--until comes before --since.")
        filters = LogFilter(
            actor=options["actor"],
            action=options["action"],
            source=options["source"],
            since=since,
            until=until,
        )
        events = list(tenant_log(operator_principal(tenant), filters)[: options["limit"]])
        if options["json"]:
            rows = [
                {
                    "id": e.pk,
                    "created_at": e.created_at.isoformat(),
                    "action": e.action,
                    "source": e.source,
                    "actor": e.actor_email,
                    "detail": e.detail,
                }
                for e in events
            ]
            self.stdout.write(json.dumps(rows, indent=2, default=str))
            return
        for e in events:
            who = e.actor_email or "system"
            staff = f" [{e.get_source_display()}]" if e.by_staff else ""
            detail = json.dumps(e.detail, default=str, sort_keys=True)
            self.stdout.write(f"{e.created_at:%Y-%m-%d %H:%M:%S} {who}{staff} {e.action} {detail}")
