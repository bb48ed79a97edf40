"""`manage.py alerts`: list open (or all) alerts, acknowledge one, evaluate the rules now."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from penguinmails.alerts.models import Alert
from penguinmails.alerts.services import acknowledge_alert, evaluate_rules, open_alerts
from penguinmails.errors import DomainError

LIMIT = 200


def _row(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "rule": alert.rule,
        "subject": alert.subject,
        "state": alert.state,
        "severity": alert.severity,
        "summary": alert.summary,
        "tenant_schema": alert.tenant_schema or None,
        "opened_at": alert.opened_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "detail": alert.detail,
    }


class Command(BaseCommand):
    help = "The alert engine: list alerts, acknowledge one, evaluate the rules now."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="open alerts (firing, acknowledged), newest first")
        listing.add_argument("--all", action="store_true", help=f"resolved too (last {LIMIT})")
        listing.add_argument("--json", action="store_true", help="machine-readable output")
        ack = sub.add_parser("ack", help="acknowledge a firing alert")
        ack.add_argument("alert_id", type=int)
        sub.add_parser("evaluate", help="run every registered rule once, now")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def do_list(self, options: dict[str, Any]) -> None:
        rows = Alert.objects.order_by("-opened_at", "-id") if options["all"] else open_alerts()
        alerts = [_row(a) for a in rows[:LIMIT]]
        if options["json"]:
            self.stdout.write(json.dumps(alerts, sort_keys=True))
            return
        if not alerts:
            self.stdout.write("no open alerts" if not options["all"] else "no alerts")
            return
        for a in alerts:
            where = f" [{a['tenant_schema']}]" if a["tenant_schema"] else ""
            self.stdout.write(
                f"#{a['id']} {a['state']:<12} {a['severity']:<8} {a['rule']} {a['subject']}"
                f"{where}: {a['summary']} (since {a['opened_at']})"
            )

    def do_ack(self, options: dict[str, Any]) -> None:
        alert = acknowledge_alert(options["alert_id"], actor="manage.py alerts ack")
        self.stdout.write(f"alert {alert.pk} acknowledged")

    def do_evaluate(self, options: dict[str, Any]) -> None:
        for rule, found in evaluate_rules().items():
            self.stdout.write(f"{rule}: {'failed' if found < 0 else found}")
