"""Campaign statistics: the daily rollups, written and read (docs/analytics.md).

Counters live in CampaignDailyStat, one row per (campaign, step, variant, UTC day). Writers (the
send pipeline when it records results, the event writer when it applies opens, clicks and
unsubscribes) call `bump` with the increments of a whole batch: one INSERT ... ON CONFLICT DO
UPDATE adds them, so concurrent writers never lose a count and stats never scan messages.

- `rollups`: the write side (`COUNTERS`, `Bump`, `bump`).
- `figures`: what the read side returns (`Figures` and its rates, per step, variant, day...).
- `reads`: campaign and tenant figures from the rollups, and a campaign's progress.
- `counters`: the status counters behind progress (kept by triggers; read, compact).
- `rebuild`: recompute a campaign's rollups from its messages and events.
"""

from __future__ import annotations

from campaigns.services.stats.figures import (
    IN_FLIGHT,
    RATES,
    CampaignRow,
    CampaignStats,
    Day,
    Figures,
    Overview,
    Progress,
    StepStats,
    VariantStats,
)
from campaigns.services.stats.reads import MAX_DAYS, campaign_stats, overview, progress
from campaigns.services.stats.rebuild import RAW_SQL, raw_rollups, rebuild
from campaigns.services.stats.rollups import COUNTERS, Bump, bump

__all__ = [
    "COUNTERS",
    "IN_FLIGHT",
    "MAX_DAYS",
    "RATES",
    "RAW_SQL",
    "Bump",
    "CampaignRow",
    "CampaignStats",
    "Day",
    "Figures",
    "Overview",
    "Progress",
    "StepStats",
    "VariantStats",
    "bump",
    "campaign_stats",
    "overview",
    "progress",
    "raw_rollups",
    "rebuild",
]
