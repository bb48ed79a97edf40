"""The pre-send checks (docs/sending.md, "Checks"), Postal-style: small named functions run in
order over a whole batch, each with at most one query, each naming why it stopped a message.

A check returns the messages it stops. A lead-level stop (`final`) skips the message for good and
stops the lead's enrollment; a temporary one (workspace suspended, campaign paused, mailbox paused
or at its limit, domain not verified, plan limit) holds it: it stays queued, `stopped_by` says
which check, and the scheduler hands it to a new job once `retry_at` (or the next visit) comes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from campaigns.models import (
    LEAD_FIELDS,
    Campaign,
    CampaignLead,
    CampaignStatus,
    EnrollmentStatus,
    Lead,
    LeadStatus,
    StoppedBy,
    Suppression,
)
from deliverability.models import DomainStatus, Mailbox, MailboxKind, MailboxStatus, SendingDomain
from deliverability.services.allowance import Allowance, allowance_for
from tenants.models import Tenant
from tenants.services.tenancy import sending_hold


@dataclass
class Item:
    """One queued message of a batch, as the pipeline needs it (no ORM instance)."""

    pk: int
    lead_id: int
    step_id: int
    variant_id: int
    mailbox_id: int | None
    to_email: str
    message_id: str | None
    attempts: int
    scheduled_for: datetime


@dataclass(frozen=True)
class Stop:
    item: Item
    check: StoppedBy
    reason: str
    final: bool = False  # lead-level: skipped for good, enrollment stopped
    retry_at: datetime | None = None  # held: not before this


@dataclass
class Context:
    """What the checks of one batch share; filled as the checks run."""

    tenant: Tenant
    campaign: Campaign
    now: datetime
    leads: dict[int, Lead] = field(default_factory=dict)
    mailboxes: dict[int, Mailbox] = field(default_factory=dict)
    domains: dict[str, SendingDomain] = field(default_factory=dict)
    allowance: Allowance | None = None  # the mailboxes' and the plan's room, asked once

    @property
    def tomorrow(self) -> datetime:
        """UTC midnight: when daily counts start again."""
        return datetime.combine(
            self.now.date() + timedelta(days=1), time(0), tzinfo=self.now.tzinfo
        )


Check = Callable[[Context, Sequence[Item]], list[Stop]]


def tenant_active(ctx: Context, items: Sequence[Item]) -> list[Stop]:
    """A suspended workspace sends nothing: its messages are held (queued, not failed) and go
    out after reactivation, when the scheduler visits the tenant again."""
    reason = sending_hold(ctx.tenant)
    if not reason:
        return []
    return [Stop(i, StoppedBy.TENANT_ACTIVE, reason) for i in items]


def campaign_running(ctx: Context, items: Sequence[Item]) -> list[Stop]:
    status = Campaign.objects.filter(pk=ctx.campaign.pk).values_list("status", flat=True).first()
    if status == CampaignStatus.RUNNING:
        return []
    reason = f"The campaign is {status or 'gone'}."
    return [Stop(i, StoppedBy.CAMPAIGN_RUNNING, reason) for i in items]


def lead_sendable(ctx: Context, items: Sequence[Item]) -> list[Stop]:
    """Not suppressed (address or domain), lead active (a replied lead only matters when the
    campaign stops on reply) and its enrollment not stopped."""
    # Only what the checks and rendering read (status, the template's fields): a whole Lead
    # (tags, timestamps, flags) costs more to load than the rest of the check.
    fields = ("status", "custom_fields", *LEAD_FIELDS)
    ctx.leads = Lead.objects.only(*fields).in_bulk({i.lead_id for i in items})
    addresses = {i.to_email.lower() for i in items}
    domains = {a.rpartition("@")[2] for a in addresses}
    suppressed = dict(
        Suppression.objects.filter(value__in=addresses | domains).values_list("value", "reason")
    )
    stopped = dict(
        CampaignLead.objects.filter(
            campaign=ctx.campaign,
            lead_id__in=[i.lead_id for i in items],
            status=EnrollmentStatus.STOPPED,
        ).values_list("lead_id", "stop_reason")
    )
    stops = []
    for item in items:
        lead = ctx.leads.get(item.lead_id)
        address = item.to_email.lower()
        domain = address.rpartition("@")[2]
        reason = ""
        if lead is None:
            reason = "The lead was deleted."
        elif address in suppressed:
            reason = f"The address is suppressed ({suppressed[address]})."
        elif domain in suppressed:
            reason = f"The domain {domain} is suppressed ({suppressed[domain]})."
        elif lead.status in (LeadStatus.UNSUBSCRIBED, LeadStatus.BOUNCED):
            reason = f"The lead is {lead.status}."
        elif lead.status == LeadStatus.REPLIED and ctx.campaign.stop_on_reply:
            reason = "The lead replied."
        elif item.lead_id in stopped:
            reason = f"The lead's enrollment was stopped: {stopped[item.lead_id] or 'stopped'}."
        if reason:
            stops.append(Stop(item, StoppedBy.LEAD_SENDABLE, reason, final=True))
    return stops


def mailbox_healthy(ctx: Context, items: Sequence[Item]) -> list[Stop]:
    ctx.mailboxes = Mailbox.objects.in_bulk({i.mailbox_id for i in items if i.mailbox_id})
    stops = []
    for item in items:
        mailbox = ctx.mailboxes.get(item.mailbox_id or 0)
        if mailbox is None:
            stops.append(Stop(item, StoppedBy.MAILBOX_HEALTHY, "The sending mailbox was deleted."))
        elif mailbox.status != MailboxStatus.ACTIVE:
            why = mailbox.paused_reason or mailbox.status_reason or mailbox.get_status_display()
            stops.append(
                Stop(
                    item,
                    StoppedBy.MAILBOX_HEALTHY,
                    f"{mailbox.address} is {mailbox.status}: {why}"[:500],
                )
            )
    return stops


def _allowance(ctx: Context) -> Allowance:
    """The batch's mailboxes' and the plan's room today, from deliverability's allowance (one
    query, asked once per batch)."""
    if ctx.allowance is None:
        ctx.allowance = allowance_for(ctx.tenant, ctx.mailboxes.keys(), now=ctx.now)
    return ctx.allowance


def mailbox_under_limit(ctx: Context, items: Sequence[Item]) -> list[Stop]:
    allowance = _allowance(ctx)
    left = {pk: allowance.left(pk) for pk in ctx.mailboxes}
    stops = []
    for item in items:
        mailbox_id = item.mailbox_id or 0
        if left.get(mailbox_id, 0) <= 0:
            address = ctx.mailboxes[mailbox_id].address
            stops.append(
                Stop(
                    item,
                    StoppedBy.MAILBOX_UNDER_LIMIT,
                    f"{address} reached its daily limit.",
                    retry_at=ctx.tomorrow,
                )
            )
        else:
            left[mailbox_id] -= 1
    return stops


def domain_verified(ctx: Context, items: Sequence[Item]) -> list[Stop]:
    """The sending domain of the mailbox's address must be verified. A connected mailbox
    (Google, Microsoft, other) on a domain the tenant did not add is authenticated by its
    provider and passes; a hosted mailbox always needs its domain verified."""
    names = {m.address.rpartition("@")[2] for m in ctx.mailboxes.values()}
    ctx.domains = {d.name: d for d in SendingDomain.objects.filter(name__in=names)}
    stops = []
    for item in items:
        mailbox = ctx.mailboxes[item.mailbox_id or 0]
        name = mailbox.address.rpartition("@")[2]
        domain = ctx.domains.get(name)
        if domain is None:
            if mailbox.kind == MailboxKind.HOSTED:
                stops.append(
                    Stop(item, StoppedBy.DOMAIN_VERIFIED, f"{name} is not a sending domain.")
                )
        elif domain.sending_paused_at is not None:
            why = domain.sending_paused_reason or "held"
            stops.append(Stop(item, StoppedBy.DOMAIN_VERIFIED, f"{name} is paused: {why}"[:500]))
        elif domain.status != DomainStatus.VERIFIED:
            stops.append(
                Stop(
                    item,
                    StoppedBy.DOMAIN_VERIFIED,
                    f"{name} is {domain.get_status_display().lower()}.",
                )
            )
    return stops


def plan_limit(ctx: Context, items: Sequence[Item]) -> list[Stop]:
    """The plan's daily sends across the tenant's mailboxes (sends counted per UTC day)."""
    allowance = _allowance(ctx)
    left = allowance.plan_left
    if left >= len(items):
        return []
    reason = f"The plan's {allowance.plan_limit:,} daily sends are used up."
    return [
        Stop(item, StoppedBy.PLAN_LIMIT, reason, retry_at=ctx.tomorrow) for item in items[left:]
    ]


# The pipeline, in order: each check sees only the messages the previous ones let through.
CHECKS: tuple[Check, ...] = (
    tenant_active,
    campaign_running,
    lead_sendable,
    mailbox_healthy,
    mailbox_under_limit,
    domain_verified,
    plan_limit,
)


def run_checks(ctx: Context, items: Sequence[Item]) -> tuple[list[Item], list[Stop]]:
    """The messages every check let through, and the stops (with the check that made each)."""
    passing = list(items)
    stops: list[Stop] = []
    for check in CHECKS:
        if not passing:
            break
        found = check(ctx, passing)
        if found:
            stopped = {s.item.pk for s in found}
            passing = [i for i in passing if i.pk not in stopped]
            stops.extend(found)
    return passing, stops
