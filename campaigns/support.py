"""Support access panels (tenants.support): campaigns, lead counts and recent messages.

Read inside the tenant's schema by `look_into_tenant`: leads are counted, never listed; messages
show their envelope (recipient, subject, status), never their body.
"""

from __future__ import annotations

from django.db.models import Count

from campaigns.models import Campaign, Lead, LeadList, Message
from tenants.support import SupportPanel, register_support_panel

LIMIT = 200
RECENT_MESSAGES = 25


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else ""


def campaigns_panel() -> SupportPanel:
    total = Campaign.objects.count()
    rows = [
        [c.name, c.status, _when(c.created_at), str(c.message_count)]
        for c in Campaign.objects.annotate(message_count=Count("messages")).order_by("-created_at")[
            :LIMIT
        ]
    ]
    return SupportPanel(
        title="Campaigns",
        columns=["Campaign", "Status", "Created", "Messages"],
        rows=rows,
        note=f"{total} in all" + (f", newest {LIMIT} shown" if total > LIMIT else ""),
    )


def leads_panel() -> SupportPanel:
    by_status = dict(
        Lead.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    rows = [[str(status), str(n)] for status, n in sorted(by_status.items())]
    rows.append(["all leads", str(sum(by_status.values()))])
    rows.append(["lists", str(LeadList.objects.count())])
    return SupportPanel(title="Leads (counts)", columns=["Leads", "Count"], rows=rows)


def messages_panel() -> SupportPanel:
    recent = Message.objects.select_related("campaign").order_by("-created_at", "-id")
    rows = [
        [
            _when(m.created_at),
            m.campaign.name,
            m.to_email,
            m.subject[:120],
            m.status,
            _when(m.sent_at),
        ]
        for m in recent[:RECENT_MESSAGES]
    ]
    return SupportPanel(
        title="Recent messages",
        columns=["Created", "Campaign", "To", "Subject", "Status", "Sent"],
        rows=rows,
        note=f"the {RECENT_MESSAGES} newest; no bodies",
    )


register_support_panel("campaigns", "Campaigns", campaigns_panel)
register_support_panel("leads", "Leads (counts)", leads_panel)
register_support_panel("messages", "Recent messages", messages_panel)
