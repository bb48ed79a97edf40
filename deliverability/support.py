"""Support access panels (tenants.support): the tenant's sending domains and mailboxes.

Read inside the tenant's schema by `look_into_tenant`; no credentials are shown.
"""

from __future__ import annotations

from deliverability.models import Mailbox, SendingDomain
from tenants.support import SupportPanel, register_support_panel

LIMIT = 200


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else ""


def domains_panel() -> SupportPanel:
    total = SendingDomain.objects.count()
    rows = [
        [d.name, d.status, _when(d.verified_at), d.sending_paused_reason or ""]
        for d in SendingDomain.objects.order_by("name")[:LIMIT]
    ]
    return SupportPanel(
        title="Sending domains",
        columns=["Domain", "Status", "Verified", "Sending paused because"],
        rows=rows,
        note=f"{total} in all" + (f", first {LIMIT} shown" if total > LIMIT else ""),
    )


def mailboxes_panel() -> SupportPanel:
    total = Mailbox.objects.count()
    rows = [
        [m.address, m.kind, m.status, str(m.daily_limit), _when(m.last_sent_at)]
        for m in Mailbox.objects.order_by("address")[:LIMIT]
    ]
    return SupportPanel(
        title="Mailboxes",
        columns=["Address", "Kind", "Status", "Daily limit", "Last sent"],
        rows=rows,
        note=f"{total} in all" + (f", first {LIMIT} shown" if total > LIMIT else ""),
    )


register_support_panel("domains", "Sending domains", domains_panel)
register_support_panel("mailboxes", "Mailboxes", mailboxes_panel)
