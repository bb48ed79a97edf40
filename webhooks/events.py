"""The events an endpoint may subscribe to, by their stable public names (docs/webhooks.md)."""

from __future__ import annotations

from django.db import models


class Event(models.TextChoices):
    MESSAGE_SENT = "message.sent"
    MESSAGE_OPENED = "message.opened"
    MESSAGE_CLICKED = "message.clicked"
    REPLY_RECEIVED = "reply.received"
    MESSAGE_BOUNCED = "message.bounced"
    MESSAGE_COMPLAINED = "message.complained"
    LEAD_UNSUBSCRIBED = "lead.unsubscribed"
    CAMPAIGN_COMPLETED = "campaign.completed"
    IMPORT_FINISHED = "import.finished"


# Sent by "Send test" only; no endpoint subscribes to it.
TEST_EVENT = "webhook.test"
