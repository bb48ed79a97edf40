"""`manage.py webhooks list --tenant SLUG [--json]`: the endpoints and their state;
`webhooks deliveries --tenant SLUG ENDPOINT_ID [--limit N] [--json]`: the newest deliveries;
`webhooks replay --tenant SLUG DELIVERY_ID`: send one again; `webhooks enable|disable --tenant
SLUG ENDPOINT_ID`. The same services as the page and the API, as the operator (owner rights)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from penguinmails.errors import DomainError
from tenants.models import Tenant
from tenants.services.access import operator_principal
from webhooks.models import Delivery, Endpoint
from webhooks.services import delivery as delivery_svc
from webhooks.services import endpoints as endpoint_svc


class Command(BaseCommand):
    help = "Outgoing webhooks: list, deliveries, replay, enable, disable (one tenant)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("list", help="The tenant's endpoints.")
        log = sub.add_parser("deliveries", help="An endpoint's newest deliveries.")
        log.add_argument("endpoint_id", type=int)
        log.add_argument("--limit", type=int, default=20)
        replay = sub.add_parser("replay", help="Send a finished delivery again.")
        replay.add_argument("delivery_id", type=int)
        for verb in ("enable", "disable"):
            sub.add_parser(verb, help=f"{verb.capitalize()} an endpoint.").add_argument(
                "endpoint_id", type=int
            )
        for each in sub.choices.values():
            each.add_argument("--tenant", required=True, help="the tenant's slug")
            each.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"], is_template=False).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            try:
                rows = self._run(tenant, options)
            except DomainError as exc:
                raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(rows, default=str))
            return
        for row in rows:
            self.stdout.write("\t".join(str(v) for v in row.values()))

    def _run(self, tenant: Tenant, options: dict[str, Any]) -> list[dict[str, Any]]:
        verb = options["subcommand"]
        if verb == "list":
            return [_endpoint(e) for e in Endpoint.objects.all()]
        if verb == "replay":
            found = Delivery.objects.select_related("endpoint").filter(pk=options["delivery_id"])
            delivery = found.first()
            if delivery is None:
                raise CommandError(f"No delivery {options['delivery_id']} in {tenant.slug}.")
            delivery_svc.replay(operator_principal(tenant), delivery)
            return [_delivery(delivery)]
        endpoint = Endpoint.objects.filter(pk=options["endpoint_id"]).first()
        if endpoint is None:
            raise CommandError(f"No endpoint {options['endpoint_id']} in {tenant.slug}.")
        if verb == "deliveries":
            limit = max(1, min(options["limit"], 1000))
            return [_delivery(d) for d in Delivery.objects.filter(endpoint=endpoint)[:limit]]
        endpoint_svc.set_enabled(operator_principal(tenant), endpoint, enabled=verb == "enable")
        return [_endpoint(endpoint)]


def _endpoint(e: Endpoint) -> dict[str, Any]:
    return {"id": e.pk, "url": e.url, "status": e.status, "events": ",".join(e.events),
            "failing_since": e.failing_since, "disabled_reason": e.disabled_reason}  # fmt: skip


def _delivery(d: Delivery) -> dict[str, Any]:
    return {"id": d.pk, "event": d.event, "event_id": d.event_id, "status": d.status,
            "attempts": d.attempts, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "created_at": d.created_at}  # fmt: skip
