"""`manage.py billing reconcile [--json]`: compare subscriptions with Stripe and fix drift (the
nightly `billing.reconcile` job does the same)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

import stripe
from django.core.management.base import BaseCommand, CommandError

from billing.services.stripe_events import reconcile
from penguinmails.errors import DomainError


class Command(BaseCommand):
    help = "Billing: reconcile subscriptions with Stripe."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        rec = sub.add_parser("reconcile", help="Copy every Stripe subscription; report fixes.")
        rec.add_argument("--json", action="store_true", help="One JSON array of fixes on stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            fixes = reconcile()
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except stripe.StripeError as exc:
            raise CommandError(f"Stripe refused: {exc.user_message or exc}") from exc
        if options["json"]:
            self.stdout.write(json.dumps([fix.__dict__ for fix in fixes], indent=2))
            return
        for fix in fixes:
            self.stdout.write(f"{fix.subscription} ({fix.tenant}): {fix.change}")
        self.stdout.write(f"{len(fixes)} fix(es).")
