"""`manage.py reputation score [--tenant SLUG]`: compute and keep today's reputation scores now
(every active tenant, or one), one line per subject, worst first (docs/reputation.md)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reputation.services import scores
from tenants.models import Tenant, TenantStatus


class Command(BaseCommand):
    help = "Reputation scores: `score [--tenant SLUG]` computes and keeps today's now."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        score = sub.add_parser("score", help="Compute and keep today's scores now.")
        score.add_argument("--tenant", help="a tenant's slug (default: every active tenant)")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options.get("tenant")
        if slug:
            tenant = Tenant.objects.filter(slug=slug, is_template=False).first()
            if tenant is None:
                raise CommandError(f"No tenant {slug!r}.")
            tenants = [tenant]
        else:
            tenants = list(
                Tenant.objects.filter(status=TenantStatus.ACTIVE, is_template=False).order_by(
                    "slug"
                )
            )
        for tenant in tenants:
            rows = sorted(scores.score_tenant(tenant), key=lambda r: (r.score, r.kind, r.subject))
            self.stdout.write(f"{tenant.slug}: {len(rows)} scores")
            for row in rows:
                why = "; ".join(
                    f"{p['name']} {p['points']}/{p['weight']}"
                    for p in row.parts
                    if p["points"] != (p["weight"] if p["name"] != "blocklists" else 0)
                )
                self.stdout.write(
                    f"  {row.kind}\t{row.subject}\t{row.score}" + (f"\t{why}" if why else "")
                )
