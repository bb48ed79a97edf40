"""Staff's read-only view of a tenant's webhooks (tenants.support, from the admin's tenant page,
each look audited): endpoints with their state and failure streak, and the newest deliveries
with their last answer. Never the secrets, never the payloads."""

from __future__ import annotations

from django.db.models import Count

from tenants.support import SupportPanel, register_support_panel
from webhooks.models import Delivery, Endpoint

RECENT = 25


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else ""


def endpoints_panel() -> SupportPanel:
    rows = [
        [e.url, ", ".join(e.events), e.status, e.disabled_reason, _when(e.failing_since),
         str(e.consecutive_failures), str(e.delivery_count)]
        for e in Endpoint.objects.annotate(delivery_count=Count("deliveries")).order_by("id")
    ]  # fmt: skip
    return SupportPanel(
        title="Webhook endpoints",
        columns=[
            "URL",
            "Events",
            "Status",
            "Disabled because",
            "Failing since",
            "Failures in a row",
            "Deliveries",
        ],  # fmt: skip
        rows=rows,
        note="secrets are never shown",
    )


def deliveries_panel() -> SupportPanel:
    recent = Delivery.objects.select_related("endpoint").order_by("-id")[:RECENT]
    rows = [
        [_when(d.created_at), d.endpoint.url, d.event, d.status, str(d.attempts),
         str(d.last_status_code or ""), d.last_error[:120]]
        for d in recent
    ]  # fmt: skip
    return SupportPanel(
        title="Recent webhook deliveries",
        columns=[
            "Created",
            "Endpoint",
            "Event",
            "Status",
            "Attempts",
            "Last HTTP status",
            "Last error",
        ],  # fmt: skip
        rows=rows,
        note=f"the {RECENT} newest; no payloads",
    )


register_support_panel("webhooks", "Webhook endpoints", endpoints_panel)
register_support_panel("webhook_deliveries", "Recent webhook deliveries", deliveries_panel)
