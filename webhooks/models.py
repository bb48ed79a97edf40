"""Outgoing webhooks (tenant schema): the endpoints a workspace registers, one delivery per
event and endpoint, and one attempt row per try (the delivery log). docs/webhooks.md."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from penguinmails.crypto import EncryptedTextField
from penguinmails.states import StateMachine


class EndpointStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class Endpoint(models.Model):
    """A URL of the tenant's that receives the events it subscribes to, signed with its secret
    (a `whsec_` Standard Webhooks secret, encrypted at rest). Disabled by hand or after sustained
    failure (`disabled_reason` says which); `failing_since` and `consecutive_failures` measure
    the current failure streak and are cleared by any successful attempt."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)  # names from webhooks.events.Event
    secret = EncryptedTextField()
    # After a rotation the old secret signs too (a second `v1,` signature) until this time, so
    # the receiver can switch without losing events.
    previous_secret = EncryptedTextField(null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=EndpointStatus.choices, default=EndpointStatus.ENABLED
    )
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)  # the breaker's clock
    created_by_email = models.EmailField(blank=True)  # users live in the public schema
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


ENDPOINT_STATES = StateMachine(
    Endpoint,
    {
        EndpointStatus.ENABLED: {EndpointStatus.DISABLED},
        EndpointStatus.DISABLED: {EndpointStatus.ENABLED},
    },
)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its next attempt
    SUCCEEDED = "succeeded", "Succeeded"  # a 2xx answer
    FAILED = "failed", "Failed"  # every attempt failed, or the endpoint was disabled


class Delivery(models.Model):
    """One event for one endpoint. `event_id` is the `webhook-id` header, the same on every
    attempt and replay, so the consumer can drop duplicates. `payload` is the exact JSON body."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    event_id = models.CharField(max_length=40, unique=True)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # The attempts of the current round: a replay starts a new round with the full schedule.
    round_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["endpoint", "-id"], name="webhook_delivery_endpoint")]

    def __str__(self) -> str:
        return f"{self.event} {self.event_id}"


DELIVERY_STATES = StateMachine(
    Delivery,
    {
        DeliveryStatus.PENDING: {DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED},
        DeliveryStatus.SUCCEEDED: {DeliveryStatus.PENDING},  # a manual replay
        DeliveryStatus.FAILED: {DeliveryStatus.PENDING},  # a manual replay
    },
    # Every delivery's outcome is already in its attempt rows: logging it twice tells nobody
    # anything. Replays and failures are logged.
    quiet=frozenset({(DeliveryStatus.PENDING, DeliveryStatus.SUCCEEDED)}),
)


class Attempt(models.Model):
    """One try of a delivery: what the endpoint answered (status code, the first 500
    characters of the body) or why no answer came (`error`), and how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number} {self.status_code or self.error}"
