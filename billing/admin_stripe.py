"""Staff admin for Stripe's records: subscriptions, payments, webhook events (with "replay").

All read-only: Stripe is the source of truth; its webhooks and the reconciliation write these.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path

from billing.admin_margins import margins_view
from billing.models import Payment, StripeEvent, Subscription
from billing.services.stripe_events import replay
from tenants.auth import logged_in_user


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(_ReadOnly):
    list_display = (
        "stripe_subscription_id",
        "tenant",
        "plan",
        "interval",
        "status",
        "current_period_end",
        "cancel_at_period_end",
        "as_of",
    )
    list_filter = ("status", "plan", "interval")
    search_fields = ("stripe_subscription_id", "stripe_customer_id", "tenant__slug")
    list_select_related = ("tenant", "plan")


@admin.register(Payment)
class PaymentAdmin(_ReadOnly):
    list_display = ("stripe_invoice_id", "tenant", "amount", "currency", "status", "paid_at")
    list_filter = ("status", "currency")
    search_fields = ("stripe_invoice_id", "stripe_charge_id", "tenant__slug")
    list_select_related = ("tenant",)

    def get_urls(self) -> list[URLPattern]:
        # The margins page (billing.admin_margins) beside the payments it is made of.
        view = self.admin_site.admin_view(margins_view)
        return [path("margins/", view, name="billing_margins"), *super().get_urls()]


@admin.register(StripeEvent)
class StripeEventAdmin(_ReadOnly):
    list_display = ("event_id", "type", "status", "created", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("event_id", "type")
    actions = ["replay_events"]

    @admin.action(description="Replay: process the selected events again")
    def replay_events(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        for event in queryset:
            replay(event, actor=logged_in_user(request))
        self.message_user(request, f"Queued {queryset.count()} event(s).", messages.SUCCESS)
