"""`manage.py campaigns <list|status|start|pause|resume|archive|complete|tick|resend|accept>`,
each with `--tenant SLUG`.

Operator tools for one tenant's campaigns (docs/sending.md, "Commands and API"). Thin: status
moves go through `campaigns.services.campaigns.transition_to` with the operator principal, `tick`
runs the real scheduler for the tenant in this process, `resend` and `accept` resolve an
`unknown` message through `campaigns.sending.resolution`. A refused operation (unknown tenant,
campaign or message, an illegal move, a message that is not `unknown`) exits non-zero with the
reason.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import (
    Campaign,
    CampaignStatus,
    EnrollmentStatus,
    MessageStatus,
)
from campaigns.sending import pacing, scheduler
from campaigns.sending.resolution import Resolution, access_message, resolve_unknown_message
from campaigns.services import campaigns as svc
from penguinmails import states
from penguinmails.errors import DomainError, NotFound
from tenants.management.commands.tenants import describe
from tenants.models import Tenant
from tenants.services.access import Principal, operator_principal
from tenants.services.tenancy import real_tenants

MOVES = ("start", "pause", "resume", "archive", "complete")
LAST_TRANSITIONS = 5


class Command(BaseCommand):
    help = (
        "Operate a tenant's campaigns: list, status, status moves, a scheduler tick, and the "
        "resolution of unknown messages (resend, accept)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        listing = sub.add_parser("list", help="The tenant's campaigns with sent/queued counts.")
        listing.add_argument("--tenant", required=True, help="The tenant's slug.")
        listing.add_argument("--json", action="store_true", help="One JSON array on stdout.")

        status = sub.add_parser("status", help="One campaign: enrollments, messages, today, log.")
        status.add_argument("id", help="The campaign's id.")
        status.add_argument("--tenant", required=True)
        status.add_argument("--json", action="store_true", help="One JSON object on stdout.")

        for move in MOVES:
            moving = sub.add_parser(move, help=f"{move.capitalize()} a campaign.")
            moving.add_argument("id", help="The campaign's id.")
            moving.add_argument("--tenant", required=True)
            moving.add_argument("--reason", default="", help="Kept in the transition log.")

        tick = sub.add_parser("tick", help="Run the scheduler for the tenant now, here.")
        tick.add_argument("--tenant", required=True)
        tick.add_argument("--json", action="store_true", help="The report as JSON.")

        resolutions = {
            Resolution.RESEND: "Re-queue an `unknown` message with its same Message-ID.",
            Resolution.ACCEPT: "Count an `unknown` message as sent (it is known to have arrived).",
        }
        for verb, text in resolutions.items():
            resolving = sub.add_parser(verb.value, help=text)
            resolving.add_argument("id", help="The campaign's id.")
            resolving.add_argument("--tenant", required=True)
            resolving.add_argument("--message", required=True, help="The message's id.")

    def handle(self, *args: Any, **options: Any) -> None:
        handlers: dict[str, Callable[[Tenant, dict[str, Any]], None]] = {
            "list": self.list_campaigns,
            "status": self.status,
            "tick": self.tick,
            "resend": self.resolve,
            "accept": self.resolve,
            **dict.fromkeys(MOVES, self.move),
        }
        slug = (options["tenant"] or "").strip().lower()
        tenant = real_tenants().filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug '{options['tenant']}'.")
        try:
            with schema_context(tenant.schema_name):
                handlers[options["subcommand"]](tenant, options)
        except DomainError as exc:
            raise CommandError(describe(exc)) from exc

    def _campaign(self, principal: Principal, raw_id: str) -> Campaign:
        try:
            return svc.access_campaign(principal, raw_id)
        except NotFound:
            raise CommandError(
                f"No campaign with id '{raw_id}' in tenant {principal.tenant.slug}."
            ) from None

    # --- list -------------------------------------------------------------------------------
    def list_campaigns(self, tenant: Tenant, options: dict[str, Any]) -> None:
        campaigns = svc.list_campaigns(operator_principal(tenant)).annotate(
            sent=Count("messages", filter=Q(messages__status=MessageStatus.SENT)),
            queued=Count("messages", filter=Q(messages__status=MessageStatus.QUEUED)),
        )
        rows = [
            {
                "id": c.pk,
                "name": c.name,
                "status": c.status,
                "sent": c.sent,  # type: ignore[attr-defined]
                "queued": c.queued,  # type: ignore[attr-defined]
            }
            for c in campaigns.order_by("id")
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write(f"No campaigns in {tenant.slug}.")
            return
        self._table(["id", "name", "status", "sent", "queued"], rows)

    def _table(self, columns: list[str], rows: list[dict[str, Any]]) -> None:
        widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
        self.stdout.write("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
        for r in rows:
            self.stdout.write("  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip())

    # --- status -----------------------------------------------------------------------------
    def status(self, tenant: Tenant, options: dict[str, Any]) -> None:
        campaign = self._campaign(operator_principal(tenant), options["id"])
        report = campaign_status(campaign)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        out = self.stdout.write
        out(f"Campaign {campaign.pk}: {campaign.name} ({campaign.status})")
        enrollments = report["enrollments"]
        out("Enrollments: " + ", ".join(f"{n} {k}" for k, n in enrollments.items()))
        out("Messages:    " + ", ".join(f"{n} {k}" for k, n in report["messages"].items()))
        today = report["today"]
        out(
            f"Today ({campaign.timezone}): {today['sent']} sent; {today['counted']} of the daily "
            f"cap of {today['daily_cap']} used"
        )
        if not report["transitions"]:
            out("No transitions yet.")
        for t in report["transitions"]:
            who = t["actor"] or "operator/system"
            why = f" — {t['reason']}" if t["reason"] else ""
            out(f"  {t['at'][:19].replace('T', ' ')}  {t['from']} → {t['to']} by {who}{why}")

    # --- moves ------------------------------------------------------------------------------
    def move(self, tenant: Tenant, options: dict[str, Any]) -> None:
        principal = operator_principal(tenant)
        campaign = self._campaign(principal, options["id"])
        before = campaign.status
        moved = svc.transition_to(
            principal,
            campaign,
            options["subcommand"],
            reason=options["reason"].strip() or "manage.py campaigns",
        )
        self.stdout.write(f"Campaign {moved.pk} ({moved.name}): {before} → {moved.status}.")

    # --- tick -------------------------------------------------------------------------------
    def tick(self, tenant: Tenant, options: dict[str, Any]) -> None:
        # Every running campaign, due or not: an operator asking for a run wants one now.
        report = scheduler.schedule_tenant(tenant, only_due=False)
        rows = [
            {
                "campaign": c.campaign_id,
                "name": c.name,
                "enrolled": c.enrolled,
                "scheduled": c.scheduled,
                "deferred": c.deferred,
                "finished": c.finished,
                "dispatched": c.dispatched,
                "jobs": c.jobs,
                "unknown": c.unknown,
                "requeued": c.requeued,
                "limited_by": c.limited_by,
                "completed": c.completed,
                "skipped": c.skipped,
                "next_run_at": c.next_run_at.isoformat() if c.next_run_at else None,
            }
            for c in report.campaigns
        ]
        if options["json"]:
            self.stdout.write(json.dumps({"tenant": tenant.slug, "campaigns": rows}, indent=2))
            return
        if not rows:
            self.stdout.write(f"No running campaigns in {tenant.slug}: nothing to schedule.")
            return
        for r in rows:
            head = f"Campaign {r['campaign']} ({r['name'] or '?'}): "
            if r["skipped"]:
                self.stdout.write(head + f"skipped, {r['skipped']}.")
                continue
            line = (
                f"{r['enrolled']} enrolled, {r['scheduled']} scheduled, {r['deferred']} deferred "
                f"to their window, {r['finished']} finished, {r['dispatched']} dispatched in "
                f"{r['jobs']} send job(s), {r['unknown']} marked unknown, {r['requeued']} "
                "re-queued (their send job died before DATA)"
            )
            if r["limited_by"]:
                line += f"; limited by {r['limited_by']}"
            line += "; completed." if r["completed"] else f"; next run {r['next_run_at']}."
            self.stdout.write(head + line)
        self.stdout.write(
            f"Scheduled {report.scheduled} message(s), dispatched "
            f"{sum(c.dispatched for c in report.campaigns)}; the workers send them."
        )

    # --- resend / accept ---------------------------------------------------------------------
    def resolve(self, tenant: Tenant, options: dict[str, Any]) -> None:
        principal = operator_principal(tenant)
        campaign = self._campaign(principal, options["id"])
        raw = options["message"]
        try:
            message = access_message(principal, raw, campaign=campaign)
        except NotFound:
            raise CommandError(f"No message with id '{raw}' in campaign {campaign.pk}.") from None
        action = options["subcommand"]
        done = resolve_unknown_message(
            principal, message, action=action, via=f"manage.py campaigns {action}"
        )
        if action == Resolution.ACCEPT:
            self.stdout.write(f"Message {done.pk} to {done.to_email} accepted as sent.")
            return
        self.stdout.write(
            f"Message {done.pk} to {done.to_email} re-queued with Message-ID "
            f"{done.message_id}; "
            + (
                "the scheduler dispatches it now."
                if campaign.status == CampaignStatus.RUNNING
                else "it goes out when the campaign is resumed."
            )
        )


def campaign_status(campaign: Campaign) -> dict[str, Any]:
    """The numbers `campaigns status` prints: enrollments, messages by status, today against
    the daily cap (counted as the scheduler counts it: messages created since local midnight in
    the campaign's timezone, skipped ones excepted) and the last transitions."""
    enrolled = dict.fromkeys(EnrollmentStatus.values, 0)
    for value, n in campaign.enrollments.values_list("status").annotate(n=Count("id")):
        enrolled[value] = n
    by_status = dict.fromkeys(MessageStatus.values, 0)
    for value, n in campaign.messages.values_list("status").annotate(n=Count("id")):
        by_status[value] = n
    midnight = pacing.local_midnight(campaign, timezone.now())  # where the scheduler counts from
    today = campaign.messages.aggregate(
        sent=Count("id", filter=Q(sent_at__gte=midnight)),
        counted=Count("id", filter=Q(created_at__gte=midnight) & ~Q(status=MessageStatus.SKIPPED)),
    )
    transitions = states.history(campaign, limit=LAST_TRANSITIONS, newest_first=True)
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "enrollments": enrolled,
        "messages": by_status,
        "today": {
            "sent": today["sent"],
            "counted": today["counted"],
            "daily_cap": campaign.daily_cap,
        },
        "transitions": [
            {
                "from": t.from_status,
                "to": t.to_status,
                "actor": "" if t.actor == states.SYSTEM else t.actor,
                "reason": t.reason,
                "at": t.at.isoformat(),
            }
            for t in reversed(transitions)
        ],
    }
