"""Warm-up models (tenant schema, docs/warmup.md): each mailbox's plan and the warm-up messages
it sent. The pool's public index is `penguinmails.models.WarmupPoolMember`; nothing else of a
tenant crosses over."""

from __future__ import annotations

from django.db import models
from django.utils import timezone as dj_timezone

from penguinmails.states import StateMachine


class WarmupStatus(models.TextChoices):
    WARMING = "warming", "Warming up"  # ramping towards the target
    MAINTENANCE = "maintenance", "Maintenance"  # at target, or campaigns running: a low level
    PAUSED = "paused", "Paused"  # by a person, or by the reputation monitor
    OFF = "off", "Off"  # opted out of the pool


PLAN_TRANSITIONS: dict[str, frozenset[str]] = {
    WarmupStatus.WARMING: frozenset(
        {WarmupStatus.MAINTENANCE, WarmupStatus.PAUSED, WarmupStatus.OFF}
    ),
    WarmupStatus.MAINTENANCE: frozenset(
        {WarmupStatus.WARMING, WarmupStatus.PAUSED, WarmupStatus.OFF}
    ),
    WarmupStatus.PAUSED: frozenset(
        {WarmupStatus.WARMING, WarmupStatus.MAINTENANCE, WarmupStatus.OFF}
    ),
    WarmupStatus.OFF: frozenset({WarmupStatus.WARMING, WarmupStatus.MAINTENANCE}),
}


class WarmupPlan(models.Model):
    """A mailbox's warm-up plan: its ramp (start volume, daily increase, target), its reply rate
    and weekend pattern, and where it stands. One per mailbox that ever joined the pool."""

    mailbox = models.OneToOneField(
        "deliverability.Mailbox", on_delete=models.CASCADE, related_name="warmup_plan"
    )
    status = models.CharField(
        max_length=16, choices=WarmupStatus.choices, default=WarmupStatus.WARMING
    )
    status_reason = models.CharField(max_length=500, blank=True)
    start_volume = models.PositiveIntegerField(default=2)
    daily_increase = models.PositiveIntegerField(default=2)
    target = models.PositiveIntegerField(default=40)
    reply_rate = models.PositiveSmallIntegerField(default=30)  # percent of received answered
    weekend_percent = models.PositiveSmallIntegerField(default=50)  # of weekday volume, Sat-Sun
    maintenance_volume = models.PositiveIntegerField(default=5)  # a day, once at target
    timezone = models.CharField(max_length=64, default="UTC")  # the day's spread is in it
    started_on = models.DateField(default=dj_timezone.localdate)  # day 1 of the ramp
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["mailbox_id"]

    def __str__(self) -> str:
        return f"warm-up of {self.mailbox_id} ({self.status})"


PLAN_STATES = StateMachine(WarmupPlan, PLAN_TRANSITIONS)


class WarmupMessageStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"  # the plan paused or the partner left before its time


MESSAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    WarmupMessageStatus.SCHEDULED: frozenset(
        {WarmupMessageStatus.SENT, WarmupMessageStatus.FAILED, WarmupMessageStatus.CANCELED}
    ),
    WarmupMessageStatus.SENT: frozenset(),
    WarmupMessageStatus.FAILED: frozenset(),
    WarmupMessageStatus.CANCELED: frozenset(),
}


class Placement(models.TextChoices):
    UNKNOWN = "unknown", "Not seen yet"
    INBOX = "inbox", "Inbox"
    SPAM = "spam", "Spam (rescued)"


class WarmupMessageKind(models.TextChoices):
    MESSAGE = "message", "Message"  # a new thread
    REPLY = "reply", "Reply"  # an answer in a partner's thread


class WarmupMessage(models.Model):
    """One warm-up message one of this tenant's mailboxes sends (or sent) to a pool member. Its
    Message-ID carries the pool's tag (`warmup.tag`); the receiving side reports where it landed
    (inbox or spam) back to this row through a job in this tenant's schema."""

    mailbox = models.ForeignKey(
        "deliverability.Mailbox", on_delete=models.CASCADE, related_name="warmup_messages"
    )
    kind = models.CharField(
        max_length=8, choices=WarmupMessageKind.choices, default=WarmupMessageKind.MESSAGE
    )
    to_member_id = models.BigIntegerField()  # penguinmails.models.WarmupPoolMember
    to_address = models.EmailField()
    message_id = models.CharField(max_length=255, unique=True)  # without <>
    in_reply_to = models.CharField(max_length=255, blank=True)  # for a reply
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(
        max_length=16,
        choices=WarmupMessageStatus.choices,
        default=WarmupMessageStatus.SCHEDULED,
    )
    scheduled_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    placement = models.CharField(max_length=8, choices=Placement.choices, default=Placement.UNKNOWN)
    placed_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)  # the partner answered it
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-scheduled_at", "-id"]
        indexes = [
            models.Index(fields=["status", "scheduled_at"], name="warmup_msg_due_idx"),
            models.Index(fields=["mailbox", "scheduled_at"], name="warmup_msg_mailbox_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id} -> {self.to_address} ({self.status})"


MESSAGE_STATES = StateMachine(
    WarmupMessage,
    MESSAGE_TRANSITIONS,
    quiet=frozenset({(WarmupMessageStatus.SCHEDULED.value, WarmupMessageStatus.SENT.value)}),
)
