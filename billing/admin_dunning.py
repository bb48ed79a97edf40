"""Staff admin for dunning: each tenant's place on the ladder and every step taken (read-only:
the ladder writes these; a payment, not staff, moves a tenant back to clear)."""

from __future__ import annotations

from django.contrib import admin

from billing.admin_stripe import _ReadOnly
from billing.models import Dunning, DunningStep


@admin.register(Dunning)
class DunningAdmin(_ReadOnly):
    list_display = ("tenant", "status", "since", "round", "last_email_day", "updated_at")
    list_filter = ("status",)
    search_fields = ("tenant__slug", "tenant__name")
    list_select_related = ("tenant",)
    readonly_fields = ("tenant", "subscription", "status", "round", "since", "stopped")


@admin.register(DunningStep)
class DunningStepAdmin(_ReadOnly):
    list_display = ("at", "tenant", "round", "day", "kind", "summary")
    list_filter = ("kind",)
    search_fields = ("tenant__slug", "summary")
    list_select_related = ("tenant",)
