"""Platform models that live in the public schema: the durable job queue.

The job row is the truth; Redis (Celery's broker and the `job:<id>` status hash) only makes it
fast. See docs/queue.md.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from penguinmails.states import StateMachine


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # waiting in PostgreSQL for run_at
    ENQUEUED = "enqueued", "Enqueued"  # published to Celery, not started yet
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Failed, retrying"  # failed transiently; waits for run_at again
    COMPLETED = "completed", "Completed"
    DEAD = "dead", "Dead"
    CANCELLED = "cancelled", "Cancelled"


# Every allowed move. `penguinmails.queue.states.transition` refuses anything else.
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    # An urgent job is published straight after commit, so a worker may claim it while queued.
    JobStatus.QUEUED: frozenset(
        {JobStatus.ENQUEUED, JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.DEAD}
    ),
    # Back to queued: the lease expired (Redis flushed, message lost).
    JobStatus.ENQUEUED: frozenset(
        {JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.DEAD}
    ),
    # Back to queued: the worker died (lease expired); dead when that used the last attempt.
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.RETRYING, JobStatus.DEAD, JobStatus.QUEUED}
    ),
    JobStatus.RETRYING: frozenset(
        {JobStatus.ENQUEUED, JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.DEAD}
    ),
    JobStatus.COMPLETED: frozenset(),
    # An operator revives dead or cancelled jobs (`jobs retry`, admin action).
    JobStatus.DEAD: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED}),
}

# The routine moves of every run (claim, publish, finish): checked but not logged, or the log
# would take three rows per job; failures, retries, requeues, cancels and revivals are logged.
_JOB_ROUTINE = frozenset(
    {
        (JobStatus.QUEUED, JobStatus.ENQUEUED),
        (JobStatus.RETRYING, JobStatus.ENQUEUED),
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.ENQUEUED, JobStatus.RUNNING),
        (JobStatus.RETRYING, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.COMPLETED),
    }
)

# Statuses in which a job still has work ahead of it; the idempotency key is unique among them.
LIVE_STATUSES = (
    JobStatus.QUEUED,
    JobStatus.ENQUEUED,
    JobStatus.RUNNING,
    JobStatus.RETRYING,
)
# Statuses a worker may claim from. Queued/retrying too: a duplicate or early message is fine,
# the conditional claim decides.
CLAIMABLE_STATUSES = (
    JobStatus.QUEUED,
    JobStatus.ENQUEUED,
    JobStatus.RETRYING,
)
READY_STATUSES = (JobStatus.QUEUED, JobStatus.RETRYING)

DEFAULT_PRIORITY = 100
DEFAULT_MAX_ATTEMPTS = 3


class Job(models.Model):
    """One unit of background work: a registered handler name, its JSON payload and its state.

    Lives in the public schema; `tenant` says in which schema the handler runs (none for
    platform jobs). Lower `priority` is more urgent.
    """

    # No database constraint: a tenant deleted while its jobs wait must leave them behind, so the
    # worker can refuse them loudly instead of running them in public.
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    task = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, blank=True)
    priority = models.PositiveSmallIntegerField(default=DEFAULT_PRIORITY)
    run_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=DEFAULT_MAX_ATTEMPTS)
    last_error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "jobs"
        ordering = ["-id"]
        indexes = [
            # The migrator's query: ready rows by priority then age. Partial, so it stays as
            # small as the backlog however many completed rows the table holds.
            models.Index(
                fields=["priority", "created_at", "run_at"],
                name="jobs_ready_idx",
                condition=Q(status__in=READY_STATUSES),
            ),
            # The reaper's query: leased rows past their lease.
            models.Index(
                fields=["lease_expires_at"],
                name="jobs_leased_idx",
                condition=Q(status__in=(JobStatus.ENQUEUED, JobStatus.RUNNING)),
            ),
            # Retention and `jobs status`.
            models.Index(fields=["status", "finished_at"], name="jobs_status_finished_idx"),
            models.Index(fields=["task", "status"], name="jobs_task_status_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(status__in=LIVE_STATUSES),
                name="jobs_live_idempotency_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.task} ({self.status})"


JOB_STATES = StateMachine(
    Job, JOB_TRANSITIONS, quiet=frozenset((str(a), str(b)) for a, b in _JOB_ROUTINE)
)


class RunningCampaign(models.Model):
    """The public index of campaigns that are running, one row per (tenant, campaign), so the
    scheduler's beat tick visits only tenants with work instead of looping over every schema.
    Written only through `penguinmails.indexes` (by the campaign state machine, in the same
    transaction as the status change: one database, one connection, and by the scheduler)."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="running_campaigns"
    )
    campaign_id = models.BigIntegerField()
    next_run_at = models.DateTimeField(default=timezone.now)  # the scheduler's next visit
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "running_campaigns"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "campaign_id"], name="running_campaign_once")
        ]
        indexes = [models.Index(fields=["next_run_at"], name="running_campaign_due_idx")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.campaign_id}"


class ScheduledCampaign(models.Model):
    """The public index of campaigns waiting in `scheduled` for their start time, one row per
    (tenant, campaign): the beat entry `campaigns-start-due` starts the due ones without looping
    over every schema. Written only through `penguinmails.indexes`, in the status change's
    transaction, like RunningCampaign."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="scheduled_campaigns"
    )
    campaign_id = models.BigIntegerField()
    start_at = models.DateTimeField()

    class Meta:
        db_table = "scheduled_campaigns"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "campaign_id"], name="scheduled_campaign_once"
            )
        ]
        indexes = [models.Index(fields=["start_at"], name="scheduled_campaign_due_idx")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.campaign_id} at {self.start_at}"


class MailboxPoll(models.Model):
    """The public index of mailboxes the inbound poller reads (docs/inbound.md, "Reading
    mailboxes"), one row per (tenant, mailbox): the beat entry `inbound-poll-due` enqueues a poll
    job for each due row without looping over every schema. Written only through
    `penguinmails.indexes`, by deliverability's mailbox moves and by the poller (its next visit,
    and its back-off after failed logins)."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="mailbox_polls"
    )
    mailbox_id = models.BigIntegerField()
    next_poll_at = models.DateTimeField(default=timezone.now)
    failures = models.PositiveIntegerField(default=0)  # consecutive failed logins
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "mailbox_polls"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "mailbox_id"], name="mailbox_poll_once")
        ]
        indexes = [models.Index(fields=["next_poll_at"], name="mailbox_poll_due_idx")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.mailbox_id} at {self.next_poll_at}"


class WarmupPoolMember(models.Model):
    """The warm-up pool's public index (docs/warmup.md): one row per mailbox taking part, across
    tenants. The one place tenants meet, so only what pairing and delivery need crosses over: the
    address mail goes to, its domain and sending IP (pairing prefers other domains, tenants and
    IPs), and the owning tenant and mailbox ids. Written only through `penguinmails.indexes`, by
    the warmup app's opt-in and opt-out and by mailbox moves."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="warmup_members"
    )
    mailbox_id = models.BigIntegerField()
    address = models.EmailField()
    domain = models.CharField(max_length=253)
    ip = models.GenericIPAddressField(null=True, blank=True)  # the IP it sends from, if known
    active = models.BooleanField(default=True)  # False: paused, failing, or opted out for now
    joined_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "warmup_pool"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "mailbox_id"], name="warmup_pool_once")
        ]
        indexes = [models.Index(fields=["active", "domain"], name="warmup_pool_active_idx")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.mailbox_id} {self.address}"


class PlatformDailyStat(models.Model):
    """Platform-wide send, bounce, complaint and reply counts per UTC day (public schema), bumped
    beside each tenant's own rollups, so the seed's "bounce rate > 15 %" staff alert is one row
    read, never a loop over tenant schemas, and /metrics's message counters are one sum. Written
    only through `penguinmails.indexes`."""

    day = models.DateField(unique=True)
    sent = models.PositiveBigIntegerField(default=0)
    bounced = models.PositiveBigIntegerField(default=0)
    complained = models.PositiveBigIntegerField(default=0)
    replied = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "platform_daily_stats"

    def __str__(self) -> str:
        return f"{self.day}: {self.sent} sent, {self.bounced} bounced"
