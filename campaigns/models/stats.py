"""Daily rollups of campaign figures and per-campaign status counters (docs/analytics.md)."""

from __future__ import annotations

from django.db import models

from campaigns.models.campaigns import Campaign, SequenceStep, StepVariant


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
    complained = models.PositiveIntegerField(default=0)  # spam complaints read from mailboxes
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


class CountKind(models.TextChoices):
    MESSAGE = "message", "Messages"
    ENROLLMENT = "enrollment", "Enrollments"


class CampaignStatusCount(models.Model):
    """How many of a campaign's messages (or enrollments) are in one status, as rows to add up.

    Written only by PostgreSQL: statement-level triggers on the messages and enrollments tables
    append one delta row per (campaign, kind, status) a statement changed, so every write path
    (ORM, raw SQL, COPY, cascades) is counted and concurrent writers never wait on a shared row;
    `campaigns.services.stats.counters.compact` folds the deltas into one row each. A campaign's
    progress is the sum of its few rows. No foreign key: the deletes of a campaign's messages
    still append (negative) deltas while the campaign row goes, and compaction drops the rows of
    campaigns that are gone."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=CountKind.choices)
    status = models.CharField(max_length=16)
    n = models.BigIntegerField()  # a delta may be negative; the sum per status never is

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.kind} {self.status}: {self.n}"
