"""`manage.py stats rebuild --tenant SLUG [--campaign ID]`: recompute campaign rollups from
messages and events (a repair tool: the writers keep them current through `stats.bump`).

Without --campaign every campaign of the tenant is rebuilt, one transaction each. Exits non-zero
with a reason for an unknown tenant or campaign.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from campaigns.models import Campaign
from campaigns.services import stats
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Campaign statistics: `stats rebuild --tenant SLUG [--campaign ID]`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        rebuild = sub.add_parser(
            "rebuild", help="Recompute daily rollups from messages and events."
        )
        rebuild.add_argument("--tenant", required=True, help="The tenant's slug.")
        rebuild.add_argument("--campaign", type=int, help="One campaign's id (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"], is_template=False).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            campaigns = Campaign.objects.order_by("id")
            if options["campaign"] is not None:
                campaigns = campaigns.filter(pk=options["campaign"])
                if not campaigns.exists():
                    raise CommandError(
                        f"No campaign {options['campaign']} in tenant {tenant.slug!r}."
                    )
            for campaign in campaigns:
                started = time.monotonic()
                rows = stats.rebuild(campaign)
                took = time.monotonic() - started
                self.stdout.write(
                    f"{campaign.pk} {campaign.name}: {rows} rollup rows in {took:.2f}s"
                )
