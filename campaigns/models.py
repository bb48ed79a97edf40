"""Campaigns app (tenant schema): email templates (docs/templates.md), leads, later campaigns."""

from __future__ import annotations

from django.db import models


class EmailTemplate(models.Model):
    """A reusable email a tenant writes: subject, HTML and text parts with `{{variables}}` and
    `{spin|tax}`, rendered per lead by `campaigns.rendering` (never by Django's template engine).
    `text_body` is generated from the HTML when the tenant leaves it empty (`text_generated`);
    `variables` caches the variable names found on the last save."""

    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=998)  # RFC 5322 line limit
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    text_generated = models.BooleanField(default=False)
    variables = models.JSONField(default=list, blank=True)
    created_by_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# --- Leads (docs/leads.md) -----------------------------------------------------------------------
from django.contrib.postgres.fields import ArrayField  # noqa: E402
from django.contrib.postgres.indexes import GinIndex  # noqa: E402
from django.db.models.functions import Lower  # noqa: E402


class LeadStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    REPLIED = "replied", "Replied"


class LeadList(models.Model):
    """A named group of leads (a campaign targets lists); a lead may be in many lists."""

    name = models.CharField(max_length=200, unique=True)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# A lead's own fields, in the order forms, the API and exports show them: what an import column
# maps to (with tags), what a template names as {{first_name}}, what the sender renders.
LEAD_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "website",
    "phone",
    "timezone",
)


class Lead(models.Model):
    """A person the tenant may email. The address is stored lower-cased and unique, so the same
    mailbox in any case is one lead per tenant. Validation flags are facts found on the way in
    (role address, disposable domain, MX answer); they warn, they do not refuse."""

    # Unique through `lead_email_unique` below rather than `unique=True`, which would add a
    # second (varchar_pattern_ops) index for prefix LIKE that no query uses and every insert pays.
    email = models.CharField(max_length=254)
    first_name = models.CharField(max_length=200, blank=True)
    last_name = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=200, blank=True)
    website = models.CharField(max_length=500, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    timezone = models.CharField(max_length=64, blank=True)  # IANA name, validated on write
    custom_fields = models.JSONField(default=dict, blank=True)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    status = models.CharField(max_length=16, choices=LeadStatus.choices, default=LeadStatus.ACTIVE)
    is_role_address = models.BooleanField(default=False)
    is_disposable = models.BooleanField(default=False)
    mx_ok = models.BooleanField(null=True, blank=True)  # None: not checked (or DNS said nothing)
    lists: models.ManyToManyField[LeadList, LeadListMember] = models.ManyToManyField(
        LeadList, related_name="leads", blank=True, through="LeadListMember"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            GinIndex(fields=["tags"], name="lead_tags_gin"),
            # Only the rare statuses: a filter on `active` (most leads) reads the table anyway,
            # and new leads (all `active`) add no entry, which an import of a million pays.
            models.Index(
                fields=["status"],
                name="lead_status_inactive_idx",
                condition=~models.Q(status=LeadStatus.ACTIVE),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["email"], name="lead_email_unique"),
            # Uniqueness is on the stored value; this keeps every stored value lower-case.
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="lead_email_lower"
            ),
        ]

    def __str__(self) -> str:
        return self.email


class LeadListMember(models.Model):
    """A lead in a list (the table of `Lead.lists`). Keyed by the pair, with no surrogate id and
    no index of its own on `lead` (the key's leading column serves it): an import puts up to a
    million leads in a list, and each index here is paid per row (docs/leads.md, "Speed")."""

    pk = models.CompositePrimaryKey("lead", "leadlist")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, db_index=False)
    leadlist = models.ForeignKey(LeadList, on_delete=models.CASCADE)

    class Meta:
        db_table = "campaigns_lead_lists"  # the table Django made for the plain many-to-many

    def __str__(self) -> str:
        return f"{self.lead_id} in {self.leadlist_id}"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Hard bounce"
    COMPLAINT = "complaint", "Spam complaint"
    MANUAL = "manual", "Added by hand"


class Suppression(models.Model):
    """An address (`someone@example.com`) or a whole domain (`example.com`) never to email:
    imports skip it and, later, sending refuses it. Stored lower-case."""

    value = models.CharField(max_length=254, unique=True)
    is_domain = models.BooleanField(default=False)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    source = models.CharField(max_length=200, blank=True)  # who or what added it
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.value


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # uploaded; waiting for its mapping or for a worker
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"  # the file became unusable part way (counts say how far)


class DuplicatePolicy(models.TextChoices):
    UPDATE = "update", "Update the existing lead"
    SKIP = "skip", "Skip the row"


class LeadImport(models.Model):
    """One CSV upload and its progress. The file lives under the tenant's media folder; the job
    `leads.import` streams it in batches, each batch committing its leads, its failed rows and
    these counts together, so a re-run resumes after the last committed batch."""

    file = models.FileField(upload_to="lead-imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    headers = models.JSONField(default=list)  # the file's header row, as read at upload
    mapping = models.JSONField(default=dict)  # header -> lead field, "custom:<key>" or ""
    delimiter = models.CharField(max_length=1, default=",")
    duplicates = models.CharField(
        max_length=8, choices=DuplicatePolicy.choices, default=DuplicatePolicy.UPDATE
    )
    check_mx = models.BooleanField(default=False)
    lead_list = models.ForeignKey(LeadList, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    total_rows = models.PositiveIntegerField(null=True, blank=True)  # counted when it starts
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error_message = models.CharField(max_length=500, blank=True)  # why the whole import failed
    job_id = models.BigIntegerField(null=True, blank=True)  # the public Job running it
    created_by_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.COMPLETED else 0
        return min(100, self.processed * 100 // self.total_rows)

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.COMPLETED, ImportStatus.FAILED)


class RowOutcome(models.TextChoices):
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class LeadImportError(models.Model):
    """A row of an import that was not imported: its line in the file, the address if any, and
    why. Written in the same transaction as its batch; downloadable as CSV."""

    lead_import = models.ForeignKey(LeadImport, on_delete=models.CASCADE, related_name="errors")
    line = models.PositiveIntegerField()
    email = models.CharField(max_length=320, blank=True)
    outcome = models.CharField(max_length=8, choices=RowOutcome.choices)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["line", "id"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


# --- Campaigns (issue 5, item 3: definition and state machine; sending comes later) ---------------
from django.core.validators import MaxValueValidator, MinValueValidator  # noqa: E402


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    ARCHIVED = "archived", "Archived"


def _weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]  # Monday..Friday (Python's weekday numbers)


class Campaign(models.Model):
    """A multi-step sequence sent to lead lists from a set of mailboxes, inside a sending window
    (days of week and local hours, in the campaign's or each lead's timezone). Its status moves
    only through `campaigns.services.campaigns.transition_to` (the table is in
    `campaigns.lifecycles`, each move logged); its definition is editable while it is a draft."""

    name = models.CharField(max_length=200, unique=True)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    timezone = models.CharField(max_length=64, default="UTC")  # IANA name, validated on write
    use_lead_timezone = models.BooleanField(default=False)
    window_days = ArrayField(models.PositiveSmallIntegerField(), default=_weekdays)
    window_start = models.TimeField(default="09:00")
    window_end = models.TimeField(default="17:00")
    daily_cap = models.PositiveIntegerField(default=500)
    min_gap_seconds = models.PositiveIntegerField(default=60)
    max_gap_seconds = models.PositiveIntegerField(default=180)
    stop_on_reply = models.BooleanField(default=True)
    # Content (docs/sending.md, "Content"). The open pixel costs spam-filter points on a short
    # message and is what careful cold senders leave out: off unless asked for. Plain text only
    # sends text/plain alone: no HTML part, no pixel, URLs as written.
    track_opens = models.BooleanField(default=False)
    plain_text_only = models.BooleanField(default=False)
    start_at = models.DateTimeField(null=True, blank=True)  # none: as soon as it is started
    lead_lists = models.ManyToManyField(LeadList, related_name="campaigns", blank=True)
    # Mailbox rows live in this same tenant schema, so a real relation is safe.
    mailboxes = models.ManyToManyField(
        "deliverability.Mailbox", related_name="campaigns", blank=True
    )
    created_by_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_gap_seconds__lte=models.F("max_gap_seconds")),
                name="campaign_gap_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(window_start__lt=models.F("window_end")),
                name="campaign_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DelayUnit(models.TextChoices):
    HOURS = "hours", "Hours"
    DAYS = "days", "Days"


class SequenceStep(models.Model):
    """One step of a campaign's sequence, sent `delay` after the previous step (the first step's
    delay counts from the campaign's start). Its content is one or more weighted variants."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    delay_amount = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(365)])
    delay_unit = models.CharField(max_length=8, choices=DelayUnit.choices, default=DelayUnit.DAYS)

    class Meta:
        ordering = ["campaign", "order"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "order"], name="step_order_unique")
        ]

    def __str__(self) -> str:
        return f"step {self.order}"

    @property
    def delay_hours(self) -> int:
        return self.delay_amount * (24 if self.delay_unit == DelayUnit.DAYS else 1)


class StepVariant(models.Model):
    """One A/B variant of a step: a template and a weight (chosen in proportion to weights)."""

    step = models.ForeignKey(SequenceStep, on_delete=models.CASCADE, related_name="variants")
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="+")
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["step", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="variant_weight_positive")
        ]

    def __str__(self) -> str:
        return f"{self.template_id} × {self.weight}"


# --- Sending (issue 5, items 4-7; docs/sending.md) -----------------------------------------------
class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "In sequence"  # has a next step (due at next_due_at)
    FINISHED = "finished", "Sequence finished"  # every step was sent
    STOPPED = "stopped", "Stopped"  # replied, unsubscribed, bounced or suppressed (stop_reason)


class CampaignLead(models.Model):
    """A lead's place in one campaign's sequence: the next step to send and when it is due
    (before the sending window is applied). Created for every lead of the campaign's lists when
    it starts, and for leads added to those lists while it runs."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="enrollments")
    status = models.CharField(
        max_length=16, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE
    )
    next_step = models.PositiveIntegerField(default=1)  # SequenceStep.order of the next send
    next_due_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "lead"], name="enrollment_once")]
        indexes = [
            models.Index(
                fields=["campaign", "next_due_at"],
                name="enrollment_due_idx",
                condition=models.Q(status="active"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.lead_id} step {self.next_step}"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # created by the scheduler, waiting for its send job
    SENDING = "sending", "Sending"  # handed to SMTP; committed before the first byte goes out
    SENT = "sent", "Sent"  # the server accepted it (250 after DATA)
    FAILED = "failed", "Failed"  # gave up: retries exhausted or a permanent non-recipient error
    BOUNCED = "bounced", "Bounced"  # hard bounce: 5xx for the recipient (address suppressed)
    UNKNOWN = "unknown", "Unknown"  # the connection died after DATA: never resent blindly
    SKIPPED = "skipped", "Skipped"  # a pre-send check stopped it for good (stopped_by says which)


class StoppedBy(models.TextChoices):
    """What held, skipped or failed a message (`Message.stopped_by`): a pre-send check
    (campaigns/sending/checks.py), or the pipeline and its crash recovery."""

    TENANT_ACTIVE = "tenant_active"
    CAMPAIGN_RUNNING = "campaign_running"
    LEAD_SENDABLE = "lead_sendable"
    MAILBOX_HEALTHY = "mailbox_healthy"
    MAILBOX_UNDER_LIMIT = "mailbox_under_limit"
    DOMAIN_VERIFIED = "domain_verified"
    PLAN_LIMIT = "plan_limit"
    RENDER = "render"  # the template did not render for this lead
    HEADER_INJECTION = "header_injection"  # a rendered header held a line break
    WORKER_LOST = "worker_lost"  # put back in the queue after its send run died before DATA
    UNKNOWN = "unknown"  # its send run died after DATA started: never resent blindly


class Message(models.Model):
    """One email to one lead for one step of one campaign. Unique per (campaign, lead, step), so
    no lead ever gets a step twice; its Message-ID is fixed at the first send attempt and reused
    by every retry. `stopped_by`/`stop_reason` name the pre-send check that held or skipped it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    step = models.ForeignKey(SequenceStep, on_delete=models.PROTECT, related_name="messages")
    variant = models.ForeignKey(StepVariant, on_delete=models.PROTECT, related_name="messages")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="messages")
    mailbox = models.ForeignKey(
        "deliverability.Mailbox",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    to_email = models.CharField(max_length=254)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    message_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    subject = models.CharField(max_length=998, blank=True)  # as rendered at send time
    scheduled_for = models.DateTimeField()  # not sent before (window, rotation gap)
    attempts = models.PositiveSmallIntegerField(default=0)
    job_id = models.BigIntegerField(null=True, blank=True)  # the public send Job holding it
    stopped_by = models.CharField(max_length=64, blank=True)  # the check that held/skipped it
    stop_reason = models.CharField(max_length=500, blank=True)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    smtp_response = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    first_opened_at = models.DateTimeField(null=True, blank=True)  # human opens only
    first_clicked_at = models.DateTimeField(null=True, blank=True)  # human clicks only
    replied_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    click_count = models.PositiveIntegerField(default=0)
    machine_open_count = models.PositiveIntegerField(default=0)
    machine_click_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "lead", "step"], name="message_once")
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="message_campaign_status_idx"),
            models.Index(
                fields=["scheduled_for"],
                name="message_queued_idx",
                condition=models.Q(status="queued"),
            ),
            models.Index(fields=["lead"], name="message_lead_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.to_email} step {self.step_id} ({self.status})"


class EventKind(models.TextChoices):
    OPEN = "open", "Open"
    CLICK = "click", "Click"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
    BOUNCE = "bounce", "Bounce"
    COMPLAINT = "complaint", "Complaint"
    REPLY = "reply", "Reply"


class MessageEvent(models.Model):
    """Something that happened to a sent message, as recorded by the tracking endpoints (through
    the Redis buffer) or the bounce and reply handling. `is_machine` marks opens and clicks made
    by mail-privacy proxies and link scanners, counted apart from people's."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    campaign_id = models.BigIntegerField()  # denormalised for per-campaign scans
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    at = models.DateTimeField()
    is_machine = models.BooleanField(default=False)
    machine_reason = models.CharField(max_length=100, blank=True)
    url = models.TextField(blank=True)  # clicks: the destination
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["campaign_id", "kind", "at"], name="event_campaign_idx"),
            models.Index(fields=["message", "kind"], name="event_message_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


class CampaignDailyStat(models.Model):
    """Daily rollup per campaign, step and variant (UTC day), kept current by the sender and the
    event writer through `campaigns.services.stats.bump`, so stats never scan messages."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="daily_stats")
    step = models.ForeignKey(SequenceStep, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(StepVariant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)  # unique human opens (first open per message)
    clicked = models.PositiveIntegerField(default=0)  # unique human clicks
    replied = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)
    machine_opened = models.PositiveIntegerField(default=0)
    machine_clicked = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["campaign", "day", "step", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "step", "variant", "day"], name="daily_stat_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.day}"
