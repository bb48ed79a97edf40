"""`manage.py plans list [--json]`, `manage.py plans assign TENANT_SLUG PLAN_SLUG` and
`manage.py plans sync-stripe` (products and monthly/yearly prices at Stripe, idempotent)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

import stripe
from django.core.management.base import BaseCommand, CommandError

from billing.entitlements import plan_for
from billing.models import Plan
from billing.services.plans import change_plan, get_plan
from billing.services.stripe_billing import sync_plans
from penguinmails.errors import DomainError, NotFound
from tenants.models import Tenant
from tenants.services.tenancy import real_tenants


def _tenant(slug: str) -> Tenant:
    tenant = real_tenants().filter(slug=(slug or "").strip().lower()).first()
    if tenant is None:
        raise NotFound(f"No tenant with slug '{slug}'.")
    return tenant


class Command(BaseCommand):
    help = "Plans: list the ladder, assign a plan to a tenant."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        listing = sub.add_parser("list", help="List plans with their limits.")
        listing.add_argument("--json", action="store_true", help="One JSON array on stdout.")
        assign = sub.add_parser("assign", help="Put a tenant on a plan.")
        assign.add_argument("tenant", metavar="SLUG", help="Tenant slug, e.g. acme.")
        assign.add_argument("plan", metavar="PLAN", help="Plan slug, e.g. growth.")
        sync = sub.add_parser("sync-stripe", help="Create or update plans' Stripe prices.")
        sync.add_argument("--json", action="store_true", help="One JSON object on stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "list": self.list_plans,
            "assign": self.assign,
            "sync-stripe": self.sync_stripe,
        }
        try:
            handlers[options["subcommand"]](options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except stripe.StripeError as exc:
            raise CommandError(f"Stripe refused: {exc.user_message or exc}") from exc

    def list_plans(self, options: dict[str, Any]) -> None:
        rows: list[dict[str, Any]] = [
            {
                "slug": plan.slug,
                "name": plan.name,
                "monthly_price": str(plan.monthly_price),
                "is_public": plan.is_public,
                "limits": plan.parsed_limits.as_dict(),
            }
            for plan in Plan.objects.all()
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            limits = row["limits"]
            hidden = "" if row["is_public"] else "  (not public)"
            self.stdout.write(
                f"{row['slug']:<12} {row['name']:<12} ${row['monthly_price']:>9}/mo  "
                f"mailboxes {limits['mailboxes']}, domains {limits['sending_domains']}, "
                f"daily sends {limits['daily_sends']}, IPs {limits['dedicated_ips']}, "
                f"members {limits['members']}, VPS {limits['vps_count']}x{limits['vps_size']}, "
                f"warm-up {'yes' if limits['warmup'] else 'no'}, "
                f"API {'yes' if limits['api_access'] else 'no'}{hidden}"
            )

    def assign(self, options: dict[str, Any]) -> None:
        tenant = _tenant(options["tenant"])
        plan = get_plan(options["plan"])
        before = plan_for(tenant)
        change_plan(tenant, plan=plan, actor=None)
        self.stdout.write(f"{tenant.slug}: {before.name} -> {plan.name}")

    def sync_stripe(self, options: dict[str, Any]) -> None:
        report = sync_plans()
        if options["json"]:
            self.stdout.write(json.dumps(report.__dict__, indent=2))
            return
        for line in report.created:
            self.stdout.write(f"created {line}")
        for line in report.archived:
            self.stdout.write(f"archived {line}")
        self.stdout.write(
            f"{len(report.created)} created, {len(report.archived)} archived, "
            f"{len(report.kept)} unchanged."
        )
