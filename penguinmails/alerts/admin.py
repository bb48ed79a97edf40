"""The admin's alert list, with the acknowledge action (as `manage.py alerts ack`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from penguinmails.alerts.models import Alert
from penguinmails.alerts.services import acknowledge_alert
from penguinmails.errors import DomainError
from penguinmails.history.admin import HistoryPanel


@admin.register(Alert)
class AlertAdmin(HistoryPanel, admin.ModelAdmin):
    list_display = (
        "id",
        "state",
        "severity",
        "rule",
        "subject",
        "summary",
        "tenant_schema",
        "opened_at",
        "last_seen_at",
        "resolved_at",
    )
    list_filter = ("state", "severity", "rule")
    search_fields = ("rule", "subject", "summary", "tenant_schema", "=id")
    ordering = ("-opened_at", "-id")
    actions = ("acknowledge",)
    readonly_fields = [*(f.name for f in Alert._meta.fields), "history"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts are opened by code (penguinmails.alerts.raise_alert)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the record of what happened stays

    @admin.action(description="Acknowledge selected firing alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = 0
        for alert in queryset:
            try:
                acknowledge_alert(alert.pk, actor=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"#{alert.pk}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)
