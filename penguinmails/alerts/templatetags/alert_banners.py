"""The alert banners: open alerts on the admin's pages, and a tenant's own open alerts on its
dashboard (one indexed query each, on pages that show them)."""

from __future__ import annotations

from typing import Any

from django import template

from penguinmails.alerts.services import open_alerts, open_alerts_for_tenant

register = template.Library()

SHOWN = 5


@register.inclusion_tag("alerts/_admin_banner.html", takes_context=True)
def admin_alert_banner(context: dict[str, Any]) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_staff", False):
        return {"alerts": [], "count": 0}
    rows = list(open_alerts()[: SHOWN + 1])
    count = len(rows) if len(rows) <= SHOWN else open_alerts().count()
    return {"alerts": rows[:SHOWN], "count": count}


@register.inclusion_tag("alerts/_tenant_banner.html", takes_context=True)
def tenant_alert_banner(context: dict[str, Any]) -> dict[str, Any]:
    tenant = context.get("tenant")
    if tenant is None or context.get("membership") is None:
        return {"alerts": []}
    return {"alerts": open_alerts_for_tenant(tenant.schema_name)}
