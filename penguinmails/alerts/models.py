"""The alert table (public schema): one row per occurrence of a condition on a subject."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from penguinmails.alerts.severity import AlertState, Severity
from penguinmails.states import StateMachine

__all__ = ["ALERT_STATES", "OPEN_STATES", "Alert", "AlertState", "Severity"]


OPEN_STATES = (AlertState.FIRING, AlertState.ACKNOWLEDGED)

ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertState.FIRING: frozenset({AlertState.ACKNOWLEDGED, AlertState.RESOLVED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset(),
}


class Alert(models.Model):
    """A condition (`rule`) true of one `subject` (an IP, a mailbox, a tenant, the platform).

    At most one open (firing or acknowledged) alert per (rule, subject), by a partial unique
    constraint: raising it again refreshes that row instead of telling anyone twice. Written only
    by `penguinmails.alerts.services`. Tenant-level alerts carry the tenant's schema name, which
    is what the tenant's dashboard asks for.
    """

    rule = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    state = models.CharField(max_length=20, choices=AlertState.choices, default=AlertState.FIRING)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    summary = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True)
    tenant_schema = models.CharField(max_length=100, blank=True, default="")
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "alerts"
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject"],
                condition=Q(state__in=["firing", "acknowledged"]),
                name="alert_one_open_per_subject",
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant_schema"],
                name="alert_open_tenant_idx",
                condition=Q(state__in=["firing", "acknowledged"]),
            ),
            models.Index(fields=["rule", "state"], name="alert_rule_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.subject} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


ALERT_STATES = StateMachine(Alert, ALERT_TRANSITIONS, field="state")
