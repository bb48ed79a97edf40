"""What the reputation app adds to lower apps' pages, registered by ReputationConfig.ready():
the score panel of a mailbox's warm-up page (warmup.faces) and the domains page's notice of a
sending domain on a domain blocklist (deliverability.notices)."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse

from deliverability.models import Mailbox
from deliverability.notices import Notice, register_domain_notices
from reputation.charts import score_chart
from reputation.models import ScoreKind
from reputation.services import blocklists, scores
from tenants.models import Tenant
from tenants.services.access import Principal
from warmup.faces import register_mailbox_panel


def score_panel(principal: Principal, mailbox: Mailbox) -> str:
    """The mailbox's latest score, its parts and its 30 days' history (chart and table)."""
    history = scores.history(ScoreKind.MAILBOX, mailbox.pk, days=30)
    latest = history[-1] if history else None
    return render_to_string(
        "reputation/_score.html",
        {
            "latest": latest,
            "history": history,
            "chart": score_chart(history, title=f"{mailbox.address}: reputation, 30 days")
            if len(history) > 1
            else "",
        },
    )


def domain_listing_notices(tenant: Tenant) -> list[Notice]:
    """One notice per live listing of one of the tenant's sending domains."""
    rows = blocklists.tenant_listings(tenant, ips=False)
    url = reverse("reputation:listings")
    return [
        Notice(
            f"{row.subject} is listed on {row.list_name} ({row.zone}) since "
            f"{row.listed_at:%Y-%m-%d}: mail from it is likely to be refused or filtered; "
            "ask the list for removal once the cause is fixed.",
            url,
        )
        for row in rows
    ]


def connect() -> None:
    register_mailbox_panel(score_panel)
    register_domain_notices(domain_listing_notices)
