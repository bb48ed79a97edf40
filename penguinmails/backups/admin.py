"""Backups in the admin: read-only (they are made by `manage.py backup` and beat)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from penguinmails.backups.models import Backup
from penguinmails.history.admin import HistoryPanel


@admin.register(Backup)
class BackupAdmin(HistoryPanel, admin.ModelAdmin):
    list_display = (
        "id", "kind", "tenant_slug", "reason", "status", "size", "started_at", "finished_at",
        "verify_status",
    )  # fmt: skip
    list_filter = ("kind", "status", "verify_status", "storage")
    search_fields = ("tenant_slug", "path", "sha256")
    readonly_fields = (
        "kind", "tenant_schema", "tenant_slug", "reason", "status", "storage", "path", "size",
        "sha256", "key_id", "error", "started_at", "finished_at", "verify_status", "verified_at",
        "verify_detail", "restored_at", "history",
    )  # fmt: skip
    exclude = ("manifest", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Backup | None = None) -> bool:
        return False
