"""What the home page shows besides the workspace's own counts: the getting-started checklist and
the last days' sending figures with mailbox health.

The home page is the one page that summarises every app, so this module reads their public read
side (billing's plan, infrastructure's mail servers, deliverability's domains and mailboxes,
campaigns' rollups through its stats service) and nothing else; each read is a constant number of
queries whatever the workspace holds (tests/dashboard/test_home.py guards it). Campaigns, the top
app, may read them all; `home_context` is registered with tenants.home at start-up
(CampaignsConfig.ready).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.urls import NoReverseMatch, reverse

from billing.entitlements import plan_for
from campaigns.models import Campaign, CampaignStatus, EmailTemplate, Lead
from campaigns.services.stats import Figures
from campaigns.services.stats import overview as campaign_overview
from deliverability.models import DomainStatus, Mailbox, MailboxStatus, SendingDomain
from infrastructure.services.mailservers import active_mail_server
from tenants.permissions import Area
from tenants.services.access import Principal

FIGURE_DAYS = 7
FIGURES = ("sent", "opened", "clicked", "replied", "bounced")


@dataclass(frozen=True)
class Step:
    """One line of the checklist: done or not, and where to do it."""

    key: str
    title: str
    text: str
    url: str
    done: bool


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:  # a page not wired up: leave the step out
        return None


def mailbox_health(principal: Principal) -> dict[str, int] | None:
    """Mailboxes by status (every status, zeros included); None without mailbox read access."""
    if not principal.allows(Area.MAILBOXES):
        return None
    counts = dict.fromkeys(MailboxStatus.values, 0)
    for row in Mailbox.objects.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def sending_figures(principal: Principal) -> dict[str, int] | None:
    """Sent, opened, clicked, replied, bounced over the last FIGURE_DAYS days, from the daily
    rollups (campaigns' stats service); None without campaign read access."""
    if not principal.allows(Area.CAMPAIGNS):
        return None
    totals: Figures = campaign_overview(principal, days=FIGURE_DAYS).totals
    return {name: int(getattr(totals, name)) for name in FIGURES}


def getting_started(principal: Principal, health: dict[str, int] | None) -> list[Step]:
    """The steps in the order that works, each done or not, limited to areas the role reads."""
    tenant = principal.tenant
    plan = plan_for(tenant)
    shared = plan.parsed_limits.vps_count <= 0
    candidates: list[tuple[Area, str, str, str, str, Callable[[], bool]]] = [
        (Area.BILLING, "plan", f"Plan: {plan.name}", "Your plan decides your limits and servers.",
         "billing:index", lambda: True),
    ]  # fmt: skip
    if shared:
        candidates.append(
            (Area.INFRASTRUCTURE, "infrastructure", "Shared servers",
             "Your plan sends from our shared servers: nothing to provision.",
             "infrastructure:index", lambda: True)
        )  # fmt: skip
    else:
        candidates.append(
            (Area.INFRASTRUCTURE, "infrastructure", "Provision your servers",
             "Your plan includes dedicated servers and IPs.", "infrastructure:index",
             lambda: active_mail_server(tenant) is not None)
        )  # fmt: skip
    active_mailboxes = (health or {}).get(MailboxStatus.ACTIVE, 0)
    candidates += [
        (Area.DOMAINS, "domain", "Add and verify a sending domain",
         "Domains get SPF, DKIM and DMARC records.", "deliverability:domains",
         lambda: SendingDomain.objects.filter(status=DomainStatus.VERIFIED).exists()),
        (Area.MAILBOXES, "mailboxes", "Create mailboxes", "Mailboxes send your campaigns.",
         "deliverability:mailboxes", lambda: active_mailboxes > 0),
        (Area.LEADS, "leads", "Import leads", "Lists of people to reach.", "campaigns:leads",
         lambda: Lead.objects.exists()),
        (Area.TEMPLATES, "template", "Write a template", "Reusable messages with variables.",
         "campaigns:templates", lambda: EmailTemplate.objects.exists()),
        (Area.CAMPAIGNS, "campaign", "Launch a campaign", "Sequences sent on a schedule.",
         "campaigns:index",
         lambda: Campaign.objects.exclude(status=CampaignStatus.DRAFT).exists()),
    ]  # fmt: skip
    steps: list[Step] = []
    for area, key, title, text, url_name, is_done in candidates:
        url = _url(url_name)
        if url is None or not principal.allows(area):
            continue
        steps.append(Step(key, title, text, url, is_done()))
    return steps


def home_context(principal: Principal) -> dict[str, Any]:
    """The home page's panels (tenants.home): checklist, sending figures, mailbox health."""
    health = mailbox_health(principal)
    steps = getting_started(principal, health)
    return {
        "steps": steps,
        "next_step": next((s for s in steps if not s.done), None),
        "figures": sending_figures(principal),
        "figure_days": FIGURE_DAYS,
        "health": health,
    }
