"""Daily rollups of campaign figures (docs/analytics.md)."""

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
