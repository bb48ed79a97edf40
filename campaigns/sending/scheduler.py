"""The scheduler (docs/sending.md, "Scheduling"): due enrollments become queued messages inside
every cap and window, and queued messages become batched send jobs.

`tick()` runs in public every 10 s (beat) and enqueues one `campaigns.schedule` job per tenant
that has a running campaign due in the public index (RunningCampaign), never a loop over schemas.
`schedule_tenant()` runs in the tenant's schema; per campaign, in one transaction:

1. lock the campaign row (FOR NO KEY UPDATE SKIP LOCKED: a second scheduler skips it, a pause
   waits for this transaction) and enrol new leads of its lists (INSERT ... ON CONFLICT DO NOTHING);
2. pick due enrollments (`due.py`, FOR UPDATE SKIP LOCKED) up to the run's caps (`pacing.py`:
   the campaign's daily cap, the mailboxes' and the plan's room from deliverability's
   allowance); a lead outside its window moves to its window's next opening; a lead inside
   gets a Message (INSERT ... ON CONFLICT (campaign, lead, step) DO NOTHING: the unique
   constraint is the exactly-once guarantee), a variant chosen by weight (seeded by campaign,
   lead and step), a mailbox in rotation and a slot spaced from that mailbox's previous one by
   a random gap; its enrollment's next_due_at becomes NULL (in flight);
3. hand queued messages without a live job (new ones, and those a check held or a pause left) to
   `campaigns.send` jobs, one per campaign batch of messages due close together;
4. complete a campaign with nothing left to send, and set the index's next visit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignStatus,
    EnrollmentStatus,
)
from campaigns.sending.dispatch import (
    BATCH_SPAN,
    SCHEDULE_TASK,
    SEND_BATCH,
    SEND_PRIORITY,
    SEND_TASK,
    dispatch,
    orphans,
    request_schedule,
    schedule_key,
    sweep_lost_sends,
)
from campaigns.sending.due import HORIZON, PICK_CHUNK, DueSelection, Windows
from campaigns.sending.enrollments import enrol
from campaigns.sending.pacing import IN_FLIGHT, MAX_PER_RUN, capacity
from campaigns.sending.sql import fetch
from campaigns.services.campaigns import transition_to
from penguinmails import indexes
from penguinmails.errors import DomainError
from penguinmails.queue.producer import JobSpec, enqueue_many
from tenants.models import Tenant
from tenants.services.access import operator_principal
from tenants.services.tenancy import sending_holds

TICK_TASK = "campaigns.tick"
REVISIT = timedelta(seconds=10)  # next visit while there is work in flight
IDLE_REVISIT = timedelta(minutes=5)  # at most this long between visits (new leads in lists)


# --- the beat tick (public) ----------------------------------------------------------------------
def tick(*, now: datetime | None = None) -> int:
    """Enqueue one schedule job per tenant with a running campaign due; returns how many. A
    tenant whose schedule job is still live is not given a second one (idempotency key)."""
    moment = now or timezone.now()
    tenant_ids = indexes.due_running_tenants(moment)
    if not tenant_ids:
        return 0
    # A suspended tenant gets no work: its index rows stay due, so reactivation resumes at once.
    held = sending_holds(tenant_ids)
    tenant_ids = [tid for tid in tenant_ids if tid not in held]
    tenants = {t.pk: t for t in Tenant.objects.filter(pk__in=tenant_ids)}
    with transaction.atomic():
        enqueue_many(
            JobSpec(SCHEDULE_TASK, {}, tenants[tid], idempotency_key=schedule_key(tid))
            for tid in tenant_ids
            if tid in tenants
        )
    return len(tenants)


# --- per tenant ----------------------------------------------------------------------------------
@dataclass
class CampaignReport:
    """What one scheduler run did for one campaign (the `tick` command prints it)."""

    campaign_id: int
    name: str = ""
    enrolled: int = 0
    scheduled: int = 0
    deferred: int = 0  # outside their window: moved to its next opening
    finished: int = 0
    dispatched: int = 0  # messages handed to send jobs (new and re-dispatched)
    jobs: int = 0
    unknown: int = 0  # stuck in `sending` without a live job, DATA started: marked unknown
    requeued: int = 0  # stuck in `sending` without a live job, before DATA: queued again
    limited_by: str = ""  # the cap that stopped this run, if any
    completed: bool = False
    skipped: str = ""  # why the campaign was not scheduled this run
    next_run_at: datetime | None = None


@dataclass
class TenantReport:
    campaigns: list[CampaignReport] = field(default_factory=list)

    @property
    def scheduled(self) -> int:
        return sum(c.scheduled for c in self.campaigns)


def schedule_tenant(
    tenant: Tenant, *, now: datetime | None = None, only_due: bool = True
) -> TenantReport:
    """Run the scheduler for each running campaign of `tenant` (those due in the public index,
    or every running one with only_due=False). Call in the tenant's schema."""
    moment = now or timezone.now()
    report = TenantReport()
    campaign_ids = indexes.running_campaigns(tenant.pk, due_at=moment if only_due else None)
    hold = sending_holds([tenant.pk]).get(tenant.pk, "")
    if hold:
        # Enqueued before a suspension (or asked for by hand): nothing is scheduled, swept or
        # dispatched; queued messages wait, and the index keeps the campaigns due.
        report.campaigns = [CampaignReport(c, skipped=hold) for c in campaign_ids]
        return report
    for campaign_id in campaign_ids:
        report.campaigns.append(schedule_campaign(tenant, campaign_id, now=moment))
    return report


def schedule_campaign(
    tenant: Tenant, campaign_id: int, *, now: datetime | None = None
) -> CampaignReport:
    moment = now or timezone.now()
    report = CampaignReport(campaign_id)
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None:
            exists = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True)
            if not exists:
                indexes.unindex_running(tenant.pk, campaign_id)
                report.skipped = "gone"
            else:
                report.skipped = "busy (another scheduler or a status change holds it)"
            return report
        report.name = campaign.name
        if campaign.status != CampaignStatus.RUNNING:
            indexes.unindex_running(tenant.pk, campaign_id)
            report.skipped = f"not running ({campaign.status})"
            return report
        _Run(tenant, campaign, moment, report).run()
    if report.completed:
        _complete(tenant, campaign)
    return report


class _Run:
    """One scheduler run over one locked, running campaign."""

    def __init__(
        self, tenant: Tenant, campaign: Campaign, now: datetime, report: CampaignReport
    ) -> None:
        self.tenant, self.campaign, self.now, self.report = tenant, campaign, now, report
        self.rng = random.Random()  # gaps need not be reproducible; variants are (seeded)

    def run(self) -> None:
        c, report = self.campaign, self.report
        report.enrolled = enrol(c, now=self.now)
        swept = sweep_lost_sends(c.pk)
        report.unknown, report.requeued = swept.unknown, swept.requeued
        if c.start_at is None or c.start_at <= self.now:
            self._schedule_due()
        new_and_orphans = orphans(c.pk, self.now + HORIZON)
        report.dispatched = len(new_and_orphans)
        report.jobs = dispatch(self.tenant, c.pk, new_and_orphans)
        self._settle()

    def _gap(self) -> timedelta:
        c = self.campaign
        return timedelta(seconds=self.rng.uniform(c.min_gap_seconds, c.max_gap_seconds))

    # --- due enrollments (due.py) within the caps (pacing.py) -----------------------------------
    def _schedule_due(self) -> None:
        c, report = self.campaign, self.report
        windows = Windows(c, self.now)
        if not c.use_lead_timezone and not windows.open(c.timezone)[0]:
            # Nobody is due before the window opens: leave the enrollments as they are.
            report.limited_by = "window"
            return
        caps = capacity(self.tenant, c, now=self.now, gap=self._gap)
        done = DueSelection(c, now=self.now, capacity=caps, windows=windows, gap=self._gap).run()
        report.scheduled, report.deferred = done.scheduled, done.deferred
        report.finished, report.limited_by = done.finished, done.limited_by

    # --- completion and the next visit -----------------------------------------------------------
    def _settle(self) -> None:
        c, report = self.campaign, self.report
        active, due_at, in_flight = fetch(
            """
            SELECT EXISTS (SELECT 1 FROM campaigns_campaignlead
                            WHERE campaign_id = %s AND status = %s),
                   (SELECT min(next_due_at) FROM campaigns_campaignlead
                     WHERE campaign_id = %s AND status = %s),
                   EXISTS (SELECT 1 FROM campaigns_message
                            WHERE campaign_id = %s AND status = ANY(%s))
            """,
            [c.pk, EnrollmentStatus.ACTIVE.value, c.pk, EnrollmentStatus.ACTIVE.value, c.pk,
             list(IN_FLIGHT)],
        )[0]  # fmt: skip
        if not active and not in_flight and (c.start_at is None or c.start_at <= self.now):
            report.completed = True
            return
        if in_flight or report.scheduled or (due_at is not None and due_at <= self.now):
            next_run = self.now + REVISIT
        else:
            next_run = self.now + IDLE_REVISIT
            if due_at is not None:
                next_run = min(next_run, max(due_at, self.now + REVISIT))
            if c.start_at is not None and c.start_at > self.now:
                next_run = min(next_run, c.start_at)
        indexes.set_next_run(self.tenant.pk, [c.pk], next_run)
        report.next_run_at = next_run


def _complete(tenant: Tenant, campaign: Campaign) -> None:
    try:
        transition_to(
            operator_principal(tenant),
            campaign,
            "complete",
            reason="Every lead finished or stopped; nothing left to send.",
        )
    except DomainError:
        pass  # paused meanwhile, or the tenant is suspended: the next run decides again


__all__ = [
    "BATCH_SPAN",
    "HORIZON",
    "IN_FLIGHT",
    "MAX_PER_RUN",
    "PICK_CHUNK",
    "SCHEDULE_TASK",
    "SEND_BATCH",
    "SEND_PRIORITY",
    "SEND_TASK",
    "TICK_TASK",
    "CampaignReport",
    "TenantReport",
    "dispatch",
    "enrol",
    "request_schedule",
    "schedule_campaign",
    "schedule_tenant",
    "tick",
]
