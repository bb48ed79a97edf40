"""Staff admin for dunning: each tenant's place on the ladder and every step taken (read-only:
the ladder writes these; a payment, not staff, moves a tenant back to clear)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.admin_stripe import _ReadOnly
from billing.models import Dunning, DunningStep
from billing.services.dunning import escalate


@admin.register(Dunning)
class DunningAdmin(_ReadOnly):
    list_display = ("tenant", "status", "since", "round", "last_email_day", "updated_at")
    list_filter = ("status",)
    search_fields = ("tenant__slug", "tenant__name")
    list_select_related = ("tenant",)
    readonly_fields = ("tenant", "subscription", "status", "round", "since", "stopped")
    actions = ["escalate_now"]

    @admin.action(description="Escalate: take the next step now (pause sending / stop servers)")
    def escalate_now(self, request: HttpRequest, queryset: QuerySet[Dunning]) -> None:
        reached = [f"{d.tenant.slug}: {escalate(d.tenant)}" for d in queryset]
        self.message_user(request, "; ".join(reached) or "Nothing selected.", messages.SUCCESS)


@admin.register(DunningStep)
class DunningStepAdmin(_ReadOnly):
    list_display = ("at", "tenant", "round", "day", "kind", "summary")
    list_filter = ("kind",)
    search_fields = ("tenant__slug", "summary")
    list_select_related = ("tenant",)
