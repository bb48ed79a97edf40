"""Staff: the warm-up pool's public index (penguinmails.models.WarmupPoolMember), read-only:
it is written only through penguinmails.indexes by the warmup app's services."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from penguinmails.models import WarmupPoolMember


@admin.register(WarmupPoolMember)
class WarmupPoolMemberAdmin(admin.ModelAdmin):
    list_display = ("address", "tenant", "mailbox_id", "domain", "ip", "active", "joined_at")
    list_filter = ("active", "tenant")
    search_fields = ("address", "domain", "ip")
    ordering = ("address",)
    readonly_fields = [f.name for f in WarmupPoolMember._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # opt-in, opt-out and pause go through the warm-up services

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
