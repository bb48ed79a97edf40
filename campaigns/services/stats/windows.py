"""A campaign's daily sent/bounced/complained/replied, for automatic protection's window, and the
resume's acknowledgement of them (docs/inbound.md, "Automatic protection")."""

from __future__ import annotations

import datetime as dt

from django.db.models import Sum
from django.utils import timezone

from campaigns.models import Campaign, CampaignDailyStat
from deliverability.models import ProtectedKind
from deliverability.services import protection_state as ps
from deliverability.services.sender_stats import SenderFigures


def campaign_daily(campaign_id: int, since: dt.date) -> dict[dt.date, SenderFigures]:
    """The campaign's figures per UTC day from `since` (all steps and variants)."""
    rows = (
        CampaignDailyStat.objects.filter(campaign_id=campaign_id, day__gte=since)
        .values("day")
        .annotate(
            sent=Sum("sent"), bounced=Sum("bounced"), complained=Sum("complained"),
            replied=Sum("replied"),
        )
    )  # fmt: skip
    return {
        r["day"]: SenderFigures(
            r["sent"] or 0, r["bounced"] or 0, r["complained"] or 0, r["replied"] or 0
        )
        for r in rows
    }


def acknowledge_campaign(campaign: Campaign, *, actor: str) -> None:
    """Called by the campaign's resume: later evaluations count only what comes after it."""
    today = timezone.now().date()
    figures = campaign_daily(campaign.pk, today).get(today) or SenderFigures()
    ps.acknowledge(
        ProtectedKind.CAMPAIGN, campaign.pk, label=campaign.name, today=figures, actor=actor
    )
