"""`manage.py warmup status [--tenant SLUG] [MAILBOX]`: the warm-up plans, one line each.
`manage.py warmup pause|resume --tenant SLUG MAILBOX`: pause or resume one mailbox's warm-up.
`manage.py warmup join|leave --tenant SLUG MAILBOX`: opt a mailbox in or out of the pool.
`manage.py warmup plan [--day YYYY-MM-DD]`: pair the pool for a day now (default tomorrow, UTC).

Bad input (unknown tenant or mailbox, a move the plan cannot make) exits non-zero and says why.
"""

from __future__ import annotations

import datetime as dt
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import Mailbox
from deliverability.services.allowance import allowance_for
from penguinmails import indexes
from penguinmails.errors import DomainError
from tenants.models import Tenant
from warmup import ramp
from warmup.models import WarmupMessage, WarmupMessageStatus, WarmupPlan
from warmup.services import plans, pool

MOVES: dict[str, Callable[[Mailbox], WarmupPlan]] = {
    "pause": pool.pause,
    "resume": pool.resume,
    "join": pool.opt_in,
    "leave": pool.opt_out,
}


class Command(BaseCommand):
    help = "Warm-up: status, pause, resume, join, leave, plan (docs/warmup.md)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        status = sub.add_parser("status", help="Show warm-up plans.")
        status.add_argument("--tenant", metavar="SLUG")
        status.add_argument("mailbox", nargs="?", metavar="MAILBOX")
        for name in MOVES:
            move = sub.add_parser(name, help=f"{name.capitalize()} a mailbox's warm-up.")
            move.add_argument("--tenant", required=True, metavar="SLUG")
            move.add_argument("mailbox", metavar="MAILBOX")
        plan = sub.add_parser("plan", help="Pair the pool for a day and enqueue its plan jobs.")
        plan.add_argument("--day", metavar="YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["subcommand"]
        if name == "status":
            self._status(options.get("tenant"), options.get("mailbox"))
        elif name == "plan":
            self._plan(options.get("day"))
        else:
            self._move(name, options["tenant"], options["mailbox"])

    def _plan(self, day: str | None) -> None:
        try:
            when = dt.date.fromisoformat(day) if day else None
        except ValueError:
            raise CommandError(f"--day {day!r} is not a date (YYYY-MM-DD).") from None
        self.stdout.write(f"{plans.plan_day(when)} pool members paired")

    def _move(self, name: str, slug: str, address: str) -> None:
        tenant = _tenant(slug)
        with schema_context(tenant.schema_name):
            mailbox = _mailbox(tenant, address)
            try:
                plan = MOVES[name](mailbox)
            except DomainError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{mailbox.address}: warm-up {plan.status}")

    def _status(self, slug: str | None, address: str | None) -> None:
        if address and not slug:
            raise CommandError("Give --tenant SLUG with a MAILBOX.")
        tenants = (
            [_tenant(slug)]
            if slug
            else list(Tenant.objects.filter(pk__in=indexes.pool_tenants()).order_by("slug"))
        )
        for tenant in tenants:
            with schema_context(tenant.schema_name):
                rows = WarmupPlan.objects.select_related("mailbox").order_by("mailbox__address")
                if address:
                    rows = rows.filter(mailbox=_mailbox(tenant, address))
                    if not rows.exists():
                        raise CommandError(f"{address} is not in the warm-up pool.")
                for line in _lines(tenant, list(rows)):
                    self.stdout.write(line)


def _tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"No tenant {slug!r}.")
    return tenant


def _mailbox(tenant: Tenant, address: str) -> Mailbox:
    mailbox = Mailbox.objects.filter(address=address.strip().lower()).first()
    if mailbox is None:
        raise CommandError(f"No mailbox {address!r} in {tenant.slug}.")
    return mailbox


def _lines(tenant: Tenant, rows: list[WarmupPlan]) -> list[str]:
    today = timezone.now().date()
    allowance = allowance_for(tenant, [p.mailbox_id for p in rows])
    scheduled = set(
        WarmupMessage.objects.filter(
            mailbox_id__in=[p.mailbox_id for p in rows], status=WarmupMessageStatus.SCHEDULED
        ).values_list("mailbox_id", flat=True)
    )
    out = []
    for plan in rows:
        room = allowance.mailboxes.get(plan.mailbox_id)
        out.append(
            f"{tenant.slug} {plan.mailbox.address} {plan.status} "
            f"day={ramp.day_number(plan, today)} volume={ramp.daily_volume(plan, today)} "
            f"scheduled={'yes' if plan.mailbox_id in scheduled else 'no'} "
            f"campaigns: {room.explanation if room else '-'}"
        )
    return out
