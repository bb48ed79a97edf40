"""Django admin for jobs: filters, and the same retry/cancel actions as `manage.py jobs`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from penguinmails.errors import DomainError
from penguinmails.history.admin import HistoryPanel
from penguinmails.models import Job
from penguinmails.queue import services
from penguinmails.queue.health import BANDS


class QueueBandFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(band, band) for band in BANDS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        value = self.value()
        return queryset.filter(BANDS[value]) if value in BANDS else queryset


@admin.register(Job)
class JobAdmin(HistoryPanel, admin.ModelAdmin):
    list_display = (
        "id",
        "task",
        "status",
        "priority",
        "tenant_id",
        "attempts",
        "max_attempts",
        "run_at",
        "finished_at",
    )
    list_filter = ("status", QueueBandFilter, "task", "tenant")
    search_fields = ("task", "idempotency_key", "last_error", "=id")
    ordering = ("-id",)
    actions = ("retry_jobs", "cancel_jobs")
    readonly_fields = [*(f.name for f in Job._meta.fields), "history"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are made by code through the producer

    @admin.action(description="Retry selected dead or cancelled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._apply(request, queryset, services.retry_job, "retried")

    @admin.action(description="Cancel selected jobs that have not started")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._apply(request, queryset, services.cancel_job, "cancelled")

    def _apply(self, request: HttpRequest, queryset: QuerySet[Job], action: Any, verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                action(job)
                done += 1
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
        if done:
            self.message_user(request, f"{done} job(s) {verb}.", messages.SUCCESS)
