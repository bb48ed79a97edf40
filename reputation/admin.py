"""Staff: the blocklists (edit, weigh, disable), IP listings and check schedules (public)."""

from __future__ import annotations

from django.contrib import admin

from reputation.models import Blocklist, BlocklistCheck, Listing


@admin.register(Blocklist)
class BlocklistAdmin(admin.ModelAdmin):
    list_display = ("name", "zone", "kind", "weight", "enabled", "removal_url")
    list_filter = ("kind", "enabled")
    list_editable = ("weight", "enabled")
    search_fields = ("name", "zone")


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ("subject", "kind", "list_name", "zone", "status", "listed_at", "delisted_at")
    list_filter = ("status", "kind", "zone")
    search_fields = ("subject",)
    readonly_fields = [f.name for f in Listing._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(BlocklistCheck)
class BlocklistCheckAdmin(admin.ModelAdmin):
    list_display = ("subject", "kind", "last_checked_at", "next_check_at", "quarantined")
    list_filter = ("kind", "quarantined")
    search_fields = ("subject",)
    readonly_fields = [f.name for f in BlocklistCheck._meta.fields]
