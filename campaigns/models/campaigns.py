"""Campaigns and their sequences: steps and weighted variants (issue 5, item 3)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns.models.leads import LeadList
from campaigns.models.templates import EmailTemplate


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
    # An out-of-office auto-reply never stops the sequence; with this on, the lead's next step
    # waits for the return date the auto-reply states (capped: INBOUND_OOO_MAX_DELAY_DAYS).
    delay_on_out_of_office = models.BooleanField(default=False)
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
