"""`manage.py billing <reconcile|margins|check-plans|dunning>` (docs/billing.md):

- `reconcile [--json]`: compare subscriptions with Stripe and fix drift (the nightly
  `billing.reconcile` job does the same);
- `margins [--month YYYY-MM] [--json] [--alert]`: each tenant's revenue, infrastructure cost and
  margin, with totals; `--alert` raises (and resolves) the staff alerts for that month;
- `check-plans [--json]`: no plan's allocation may cost more than its price (exit 1 naming it);
- `dunning [--now ISO-8601] [--json]`: move overdue tenants along the ladder now (the daily
  `billing.dunning_advance` job does the same); `--now` simulates a later day (demo).
"""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from typing import Any

import stripe
from django.core.management.base import BaseCommand, CommandError

from billing.services import dunning, margins
from billing.services.stripe_events import reconcile
from penguinmails.errors import DomainError


class Command(BaseCommand):
    help = "Billing: reconcile with Stripe, margins, plan cost check, dunning."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        rec = sub.add_parser("reconcile", help="Copy every Stripe subscription; report fixes.")
        rec.add_argument("--json", action="store_true", help="One JSON array of fixes on stdout.")
        mar = sub.add_parser("margins", help="Revenue, cost and margin per tenant for a month.")
        mar.add_argument("--month", default="", help="YYYY-MM (default: this month).")
        mar.add_argument("--json", action="store_true", help="One JSON document on stdout.")
        mar.add_argument("--alert", action="store_true", help="Raise/resolve the staff alerts.")
        chk = sub.add_parser("check-plans", help="No plan's allocation costs more than its price.")
        chk.add_argument("--json", action="store_true", help="One JSON array on stdout.")
        dun = sub.add_parser("dunning", help="Move overdue tenants along the ladder now.")
        dun.add_argument("--now", default="", help="Act as of this ISO-8601 time (simulation).")
        dun.add_argument("--json", action="store_true", help="One JSON array on stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        handlers = {
            "reconcile": self.reconcile,
            "margins": self.margins,
            "check-plans": self.check_plans,
            "dunning": self.dunning,
        }
        try:
            handlers[options["subcommand"]](options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except stripe.StripeError as exc:
            raise CommandError(f"Stripe refused: {exc.user_message or exc}") from exc

    def reconcile(self, options: dict[str, Any]) -> None:
        fixes = reconcile()
        if options["json"]:
            self.stdout.write(json.dumps([fix.__dict__ for fix in fixes], indent=2))
            return
        for fix in fixes:
            self.stdout.write(f"{fix.subscription} ({fix.tenant}): {fix.change}")
        self.stdout.write(f"{len(fixes)} fix(es).")

    def margins(self, options: dict[str, Any]) -> None:
        report = margins.margins(options["month"] or None)
        if options["alert"]:
            margins.alert_margins(report.month)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(f"Margins for {report.month} (floor {margins.floor()}%):")
        for row in report.rows:
            pct = "-" if row.margin_percent is None else f"{row.margin_percent}%"
            self.stdout.write(
                f"{row.tenant}: revenue ${row.revenue}, cost ${row.cost}, margin ${row.margin} "
                f"({pct})"
            )
        pct = "-" if report.margin_percent is None else f"{report.margin_percent}%"
        self.stdout.write(
            f"Total: revenue ${report.revenue}, cost ${report.cost}, margin ${report.margin} "
            f"({pct}); {len(report.rows)} tenant(s)."
        )

    def check_plans(self, options: dict[str, Any]) -> None:
        checks = margins.check_plans()
        bad = [c for c in checks if not c.ok]
        if options["json"]:
            rows = [
                {"plan": c.plan, "price": str(c.price), "cost": str(c.cost), "ok": c.ok}
                for c in checks
            ]
            self.stdout.write(json.dumps(rows, indent=2))
        else:
            for c in checks:
                verdict = "ok" if c.ok else "COSTS MORE THAN ITS PRICE"
                self.stdout.write(f"{c.plan}: price ${c.price}, allocation ${c.cost}: {verdict}")
        if bad:
            names = ", ".join(f"{c.plan} (${c.cost} > ${c.price})" for c in bad)
            raise CommandError(f"Plans whose allocation costs more than their price: {names}")

    def dunning(self, options: dict[str, Any]) -> None:
        now = None
        if options["now"]:
            try:
                now = dt.datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now must be ISO-8601: {exc}") from exc
            if now.tzinfo is None:
                now = now.replace(tzinfo=dt.UTC)
        moved = dunning.advance(now=now)
        if options["json"]:
            self.stdout.write(json.dumps([m.__dict__ for m in moved], indent=2))
            return
        for m in moved:
            self.stdout.write(f"{m.tenant}: day {m.day}, {m.status}")
        self.stdout.write(f"{len(moved)} tenant(s) on the ladder.")
