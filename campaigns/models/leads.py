"""Leads, lead lists, suppressions and CSV imports (docs/leads.md)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Lower


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
