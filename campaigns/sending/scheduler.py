"""The scheduler (docs/sending.md, "Scheduling"): due enrollments become queued messages inside
every cap and window, and queued messages become batched send jobs.

`tick()` runs in public every 10 s (beat) and enqueues one `campaigns.schedule` job per tenant
that has a running campaign due in the public index (RunningCampaign), never a loop over schemas.
`schedule_tenant()` runs in the tenant's schema; per campaign, in one transaction:

1. lock the campaign row (FOR NO KEY UPDATE SKIP LOCKED: a second scheduler skips it, a pause
   waits for this transaction) and enrol new leads of its lists (INSERT ... ON CONFLICT DO NOTHING);
2. pick due enrollments (FOR UPDATE SKIP LOCKED) up to the campaign's daily cap, the mailboxes'
   remaining daily capacity and the plan's daily sends; a lead outside its window moves to its
   window's next opening; a lead inside gets a Message (INSERT ... ON CONFLICT (campaign, lead,
   step) DO NOTHING: the unique constraint is the exactly-once guarantee), a variant chosen by
   weight (seeded by campaign, lead and step), a mailbox in rotation and a slot spaced from that
   mailbox's previous one by a random gap; its enrollment's next_due_at becomes NULL (in flight);
3. hand queued messages without a live job (new ones, and those a check held or a pause left) to
   `campaigns.send` jobs, one per campaign batch of messages due close together;
4. complete a campaign with nothing left to send, and set the index's next visit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.entitlements import limits_for
from campaigns.models import (
    Campaign,
    CampaignStatus,
    EnrollmentStatus,
    MessageStatus,
    SequenceStep,
    StepVariant,
)
from campaigns.schedule import Window, is_within_window, next_window_start
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
from campaigns.sending.enrollments import enrol
from campaigns.sending.sql import chunks, execute, fetch, update_from_values, values
from campaigns.services.campaigns import transition_to
from deliverability.models import Mailbox, MailboxStatus
from penguinmails.errors import DomainError
from penguinmails.models import RunningCampaign
from penguinmails.queue.producer import JobSpec, enqueue_many
from tenants.models import Tenant
from tenants.services.access import operator_principal
from tenants.services.tenancy import sending_holds

TICK_TASK = "campaigns.tick"
# Messages are created at most this far ahead of their slot: a pause, a limit change or a
# mailbox failure then affects little already queued, and in-flight rows stay few.
HORIZON = timedelta(minutes=10)
MAX_PER_RUN = 20_000  # messages created per campaign per scheduler run
PICK_CHUNK = 2_000
REVISIT = timedelta(seconds=10)  # next visit while there is work in flight
IDLE_REVISIT = timedelta(minutes=5)  # at most this long between visits (new leads in lists)
IN_FLIGHT = (MessageStatus.QUEUED.value, MessageStatus.SENDING.value)


# --- the beat tick (public) ----------------------------------------------------------------------
def tick(*, now: datetime | None = None) -> int:
    """Enqueue one schedule job per tenant with a running campaign due; returns how many. A
    tenant whose schedule job is still live is not given a second one (idempotency key)."""
    moment = now or timezone.now()
    tenant_ids = sorted(
        set(
            RunningCampaign.objects.filter(next_run_at__lte=moment).values_list(
                "tenant_id", flat=True
            )
        )
    )
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
    index = RunningCampaign.objects.filter(tenant=tenant)
    if only_due:
        index = index.filter(next_run_at__lte=moment)
    report = TenantReport()
    campaign_ids = sorted(index.values_list("campaign_id", flat=True))
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
                RunningCampaign.objects.filter(tenant=tenant, campaign_id=campaign_id).delete()
                report.skipped = "gone"
            else:
                report.skipped = "busy (another scheduler or a status change holds it)"
            return report
        report.name = campaign.name
        if campaign.status != CampaignStatus.RUNNING:
            RunningCampaign.objects.filter(tenant=tenant, campaign_id=campaign_id).delete()
            report.skipped = f"not running ({campaign.status})"
            return report
        _Run(tenant, campaign, moment, report).run()
    if report.completed:
        _complete(tenant, campaign)
    return report


@dataclass
class _MailboxSlot:
    mailbox_id: int
    address: str
    remaining: int
    cursor: datetime  # the earliest slot for its next message


class _Run:
    """One scheduler run over one locked, running campaign."""

    def __init__(
        self, tenant: Tenant, campaign: Campaign, now: datetime, report: CampaignReport
    ) -> None:
        self.tenant, self.campaign, self.now, self.report = tenant, campaign, now, report
        self.window = Window(
            frozenset(campaign.window_days), campaign.window_start, campaign.window_end
        )
        self.rng = random.Random()  # gaps need not be reproducible; variants are (seeded)
        self._tz_open: dict[str, tuple[bool, datetime]] = {}

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

    # --- capacity --------------------------------------------------------------------------------
    def _campaign_remaining(self) -> int:
        zone = ZoneInfo(self.campaign.timezone)
        local_midnight = datetime.combine(self.now.astimezone(zone).date(), time(0), tzinfo=zone)
        (used,) = fetch(
            "SELECT count(*) FROM campaigns_message WHERE campaign_id = %s AND created_at >= %s "
            "AND status <> %s",
            [self.campaign.pk, local_midnight, MessageStatus.SKIPPED.value],
        )[0]
        return max(0, self.campaign.daily_cap - int(used))

    def _mailboxes(self) -> list[_MailboxSlot]:
        today = self.now.date()
        rows = fetch(
            """
            SELECT m.id, m.address, m.daily_limit,
                   CASE WHEN m.sent_on = %s THEN m.sent_today ELSE 0 END,
                   (SELECT count(*) FROM campaigns_message x
                     WHERE x.mailbox_id = m.id AND x.status = ANY(%s)),
                   GREATEST(m.last_sent_at,
                            (SELECT max(x.scheduled_for) FROM campaigns_message x
                              WHERE x.mailbox_id = m.id AND x.status = ANY(%s)))
            FROM deliverability_mailbox m
            JOIN campaigns_campaign_mailboxes cm ON cm.mailbox_id = m.id
            WHERE cm.campaign_id = %s AND m.status = %s
            ORDER BY m.id
            """,
            [today, list(IN_FLIGHT), list(IN_FLIGHT), self.campaign.pk, MailboxStatus.ACTIVE.value],
        )
        slots = []
        for mailbox_id, address, limit, sent, in_flight, last in rows:
            remaining = int(limit) - int(sent) - int(in_flight)
            if remaining <= 0:
                continue
            cursor = self.now if last is None else max(self.now, last + self._gap())
            slots.append(_MailboxSlot(mailbox_id, address, remaining, cursor))
        return slots

    def _plan_remaining(self) -> int:
        allowed = limits_for(self.tenant).daily_sends
        sent = (
            Mailbox.objects.filter(sent_on=self.now.date()).aggregate(n=Sum("sent_today"))["n"] or 0
        )
        (in_flight,) = fetch(
            "SELECT count(*) FROM campaigns_message WHERE status = ANY(%s)", [list(IN_FLIGHT)]
        )[0]
        return max(0, allowed - int(sent) - int(in_flight))

    def _gap(self) -> timedelta:
        c = self.campaign
        return timedelta(seconds=self.rng.uniform(c.min_gap_seconds, c.max_gap_seconds))

    # --- windows ---------------------------------------------------------------------------------
    def _tz_of(self, lead_tz: str) -> str:
        if self.campaign.use_lead_timezone and lead_tz:
            try:
                ZoneInfo(lead_tz)
            except (KeyError, ValueError):
                return self.campaign.timezone
            return lead_tz
        return self.campaign.timezone

    def _open(self, tz: str) -> tuple[bool, datetime]:
        """(inside the window now, its end today) or (False, its next opening), per timezone."""
        cached = self._tz_open.get(tz)
        if cached is None:
            if is_within_window(self.now, self.window, tz):
                zone = ZoneInfo(tz)
                local_day = self.now.astimezone(zone).date()
                end = datetime.combine(local_day, self.window.end, tzinfo=zone).astimezone(UTC)
                cached = (True, end)
            else:
                cached = (False, next_window_start(self.now, self.window, tz))
            self._tz_open[tz] = cached
        return cached

    # --- due enrollments -------------------------------------------------------------------------
    def _schedule_due(self) -> None:
        c, report = self.campaign, self.report
        steps = {s.order: s for s in SequenceStep.objects.filter(campaign=c)}
        variants: dict[int, list[StepVariant]] = {}
        for variant in StepVariant.objects.filter(step__campaign=c).order_by("id"):
            variants.setdefault(variant.step_id, []).append(variant)
        if not c.use_lead_timezone:
            inside, _ = self._open(c.timezone)
            if not inside:
                report.limited_by = "window"
                # Nobody is due before the window opens: leave the enrollments as they are.
                return
        campaign_left = self._campaign_remaining()
        plan_left = self._plan_remaining()
        mailboxes = self._mailboxes()
        limit = min(campaign_left, plan_left, sum(m.remaining for m in mailboxes), MAX_PER_RUN)
        if limit <= 0:
            report.limited_by = (
                "daily cap"
                if campaign_left <= 0
                else "plan limit"
                if plan_left <= 0
                else "mailboxes"
            )
            return
        horizon = self.now + HORIZON
        turn = 0
        created = 0
        while created < limit:
            picked = fetch(
                """
                SELECT e.id, e.lead_id, e.next_step, l.email, l.timezone
                FROM campaigns_campaignlead e JOIN campaigns_lead l ON l.id = e.lead_id
                WHERE e.campaign_id = %s AND e.status = %s AND e.next_due_at <= %s
                ORDER BY e.next_due_at, e.id
                LIMIT %s
                FOR UPDATE OF e SKIP LOCKED
                """,
                [c.pk, EnrollmentStatus.ACTIVE.value, self.now, PICK_CHUNK],
            )
            if not picked:
                break
            deferred: list[tuple[int, datetime]] = []
            finished: list[int] = []
            messages: list[tuple[Any, ...]] = []
            in_flight: list[int] = []
            full = False
            for enrollment_id, lead_id, order, email, lead_tz in picked:
                step = steps.get(order)
                if step is None or not variants.get(step.pk):
                    finished.append(enrollment_id)
                    continue
                inside, moment = self._open(self._tz_of(lead_tz))
                if not inside:
                    deferred.append((enrollment_id, moment))
                    continue
                if full or created >= limit or not mailboxes:
                    full = True
                    continue
                # Round robin from where the last message left off, skipping mailboxes whose
                # next slot is past the horizon or the lead's window end.
                slot_end = min(horizon, moment)
                chosen = None
                for offset in range(len(mailboxes)):
                    candidate = mailboxes[(turn + offset) % len(mailboxes)]
                    if candidate.cursor < slot_end:
                        chosen = candidate
                        turn = (turn + offset + 1) % len(mailboxes)
                        break
                if chosen is None:
                    continue  # no slot before this lead's window closes: stays due
                options = variants[step.pk]
                seeded = random.Random(f"{c.pk}:{lead_id}:{order}")
                variant = seeded.choices(options, weights=[v.weight for v in options])[0]
                messages.append(
                    (step.pk, variant.pk, lead_id, chosen.mailbox_id, email, chosen.cursor)
                )
                in_flight.append(enrollment_id)
                chosen.cursor = chosen.cursor + self._gap()
                chosen.remaining -= 1
                if chosen.remaining <= 0:
                    mailboxes.remove(chosen)
                    turn = turn % len(mailboxes) if mailboxes else 0
                created += 1
            report.scheduled += _insert_messages(c.pk, messages, self.now)
            _set_due(deferred)
            report.deferred += len(deferred)
            if in_flight:
                execute(
                    "UPDATE campaigns_campaignlead SET next_due_at = NULL, updated_at = %s "
                    "WHERE id = ANY(%s)",
                    [self.now, in_flight],
                )
            if finished:
                execute(
                    "UPDATE campaigns_campaignlead SET status = %s, next_due_at = NULL, "
                    "updated_at = %s WHERE id = ANY(%s)",
                    [EnrollmentStatus.FINISHED.value, self.now, finished],
                )
                report.finished += len(finished)
            if full or len(picked) < PICK_CHUNK or not (messages or deferred or finished):
                if created >= limit:
                    report.limited_by = report.limited_by or _which_limit(
                        limit, campaign_left, plan_left
                    )
                break

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
        RunningCampaign.objects.filter(tenant=self.tenant, campaign_id=c.pk).update(
            next_run_at=next_run
        )
        report.next_run_at = next_run


def _which_limit(limit: int, campaign_left: int, plan_left: int) -> str:
    if limit == campaign_left:
        return "daily cap"
    if limit == plan_left:
        return "plan limit"
    if limit == MAX_PER_RUN:
        return "run size"
    return "mailboxes"


def _insert_messages(campaign_id: int, rows: list[tuple[Any, ...]], now: datetime) -> int:
    inserted = 0
    for part in chunks(rows, 1000):
        body, params = values(
            [(*row, now) for row in part],
            ["bigint", "bigint", "bigint", "bigint", "text", "timestamptz", "timestamptz"],
        )
        inserted += execute(
            f"""
            INSERT INTO campaigns_message
                (campaign_id, step_id, variant_id, lead_id, mailbox_id, to_email, status, subject,
                 scheduled_for, attempts, stopped_by, stop_reason, smtp_response, open_count,
                 click_count, machine_open_count, machine_click_count, created_at, updated_at)
            SELECT %s, v.step_id, v.variant_id, v.lead_id, v.mailbox_id, v.to_email, %s, '',
                   v.scheduled_for, 0, '', '', '', 0, 0, 0, 0, v.now, v.now
            FROM ({body}) AS v(step_id, variant_id, lead_id, mailbox_id, to_email,
                                scheduled_for, now)
            ON CONFLICT (campaign_id, lead_id, step_id) DO NOTHING
            """,  # noqa: S608 - the VALUES list is placeholders only
            [campaign_id, MessageStatus.QUEUED.value, *params],
        )
    return inserted


def _set_due(rows: list[tuple[int, datetime]]) -> None:
    if rows:
        update_from_values(
            "campaigns_campaignlead",
            rows,
            [("id", "bigint"), ("due", "timestamptz")],
            "next_due_at = v.due, updated_at = now()",
        )


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
