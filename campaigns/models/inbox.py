"""The unified inbox's own state (docs/inbound.md, "Unified inbox").

The replies themselves are deliverability's `InboundMessage` rows (one owner per table:
deliverability writes them, campaigns only reads them). What the inbox adds, a label, read
state and the answers sent, is campaigns' and lives here, keyed by the inbound message's id.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class InboxLabel(models.TextChoices):
    INTERESTED = "interested", "Interested"
    NOT_INTERESTED = "not_interested", "Not interested"
    MEETING_BOOKED = "meeting_booked", "Meeting booked"
    OUT_OF_OFFICE = "out_of_office", "Out of office"
    WRONG_PERSON = "wrong_person", "Wrong person"


class InboxEvent(models.TextChoices):
    """Event names for outgoing webhooks (not sent yet: named here so they are stable)."""

    REPLY_RECEIVED = "reply.received"
    MESSAGE_BOUNCED = "message.bounced"
    MESSAGE_COMPLAINED = "message.complained"


class InboxState(models.Model):
    """The inbox's label and read state of one inbound reply (deliverability.InboundMessage id).
    No row means unread and unlabelled."""

    inbound_id = models.BigIntegerField(unique=True)
    label = models.CharField(max_length=20, choices=InboxLabel.choices, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"inbound {self.inbound_id} {self.label or '-'}"


class InboxReply(models.Model):
    """An answer sent from the inbox to one inbound reply, from the mailbox it came to."""

    inbound_id = models.BigIntegerField(db_index=True)
    mailbox = models.ForeignKey(
        "deliverability.Mailbox", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    to_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=998)
    body = models.TextField()
    message_id = models.CharField(max_length=500)
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.TextField(blank=True)
    smtp_code = models.IntegerField(null=True, blank=True)
    smtp_response = models.CharField(max_length=500, blank=True)
    sent_by_email = models.EmailField(blank=True)  # users live in the public schema
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"reply to inbound {self.inbound_id}: {self.subject}"
