"""What sending records (issue 5, items 4-7; docs/sending.md): a lead's place in a campaign's
sequence, each message sent and the events that happen to it."""

from __future__ import annotations

from django.db import models

from campaigns.models.campaigns import Campaign, SequenceStep, StepVariant
from campaigns.models.leads import Lead


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
                condition=models.Q(status=EnrollmentStatus.ACTIVE),
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
                condition=models.Q(status=MessageStatus.QUEUED),
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
    AUTO_REPLY = "auto_reply", "Auto-reply"


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
