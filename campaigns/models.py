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


class Lead(models.Model):
    """A person the tenant may email. The address is stored lower-cased and unique, so the same
    mailbox in any case is one lead per tenant. Validation flags are facts found on the way in
    (role address, disposable domain, MX answer); they warn, they do not refuse."""

    email = models.CharField(max_length=254, unique=True)
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
    lists = models.ManyToManyField(LeadList, related_name="leads", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            GinIndex(fields=["tags"], name="lead_tags_gin"),
            models.Index(fields=["status"], name="lead_status_idx"),
        ]
        constraints = [
            # Uniqueness is on the stored value; this keeps every stored value lower-case.
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="lead_email_lower"
            )
        ]

    def __str__(self) -> str:
        return self.email


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
    only through `campaigns.services.campaigns.transition_to` (one row per move); its definition
    is editable while it is a draft."""

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


class CampaignTransition(models.Model):
    """One status change of a campaign: from, to, who and when (the state machine's log)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=CampaignStatus.choices)
    to_status = models.CharField(max_length=16, choices=CampaignStatus.choices)
    actor_email = models.EmailField(blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.from_status} → {self.to_status}"


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
