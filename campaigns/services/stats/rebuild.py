"""Rebuild a campaign's rollups from its messages and events (a repair tool, and the
benchmark's baseline)."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from campaigns.models import Campaign
from campaigns.services.stats.rollups import COUNTERS

# One scan of the campaign's messages unpivoted into (counter, when) facts, plus the first open
# and click per message and kind of actor from its events; each fact lands on its UTC day.
_FACTS_SQL = """
SELECT m.step_id, m.variant_id, f.counter, f.at
FROM campaigns_message m
CROSS JOIN LATERAL (VALUES
    ('sent', m.sent_at),
    ('delivered', m.sent_at),
    ('failed', CASE WHEN m.status = 'failed' THEN m.updated_at END),
    ('bounced', m.bounced_at),
    ('replied', m.replied_at),
    ('unsubscribed', m.unsubscribed_at)
) AS f(counter, at)
WHERE m.campaign_id = %(campaign)s AND f.at IS NOT NULL
UNION ALL
SELECT m.step_id, m.variant_id, e.counter, e.at
FROM (
    SELECT message_id,
           CASE WHEN kind = 'open' THEN 'opened' ELSE 'clicked' END
           || CASE WHEN is_machine THEN '_machine' ELSE '' END AS counter,
           MIN(at) AS at
    FROM campaigns_messageevent
    WHERE campaign_id = %(campaign)s AND kind IN ('open', 'click')
    GROUP BY message_id, kind, is_machine
) e
JOIN campaigns_message m ON m.id = e.message_id
UNION ALL
SELECT m.step_id, m.variant_id, 'complained', MIN(e.at)
FROM campaigns_messageevent e
JOIN campaigns_message m ON m.id = e.message_id
WHERE e.campaign_id = %(campaign)s AND e.kind = 'complaint'
GROUP BY m.id, m.step_id, m.variant_id
"""
_FACT_NAMES = {name: name for name in COUNTERS} | {
    "machine_opened": "opened_machine",
    "machine_clicked": "clicked_machine",
}
RAW_SQL = (
    "SELECT step_id, variant_id, (at AT TIME ZONE 'UTC')::date AS day, "  # noqa: S608 - constants
    + ", ".join(f"COUNT(*) FILTER (WHERE counter = '{_FACT_NAMES[name]}')" for name in COUNTERS)
    + f" FROM ({_FACTS_SQL}) facts GROUP BY 1, 2, 3"
)


def raw_rollups(campaign_id: int) -> list[tuple[Any, ...]]:
    """The rollup rows (step_id, variant_id, day, *COUNTERS) computed from messages and events:
    what `bump` should have accumulated. Scans every message and event of the campaign."""
    with connection.cursor() as cursor:
        cursor.execute(RAW_SQL, {"campaign": campaign_id})
        return list(cursor.fetchall())


def rebuild(campaign: Campaign) -> int:
    """Replace a campaign's rollups with ones recomputed from its messages and events; returns
    the number of rows written. Holds a lock that makes `bump` wait (tenant-wide) meanwhile, so
    no increment lands between the recount and the replacement."""
    columns = ", ".join(COUNTERS)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Conflicts with the ROW EXCLUSIVE lock every INSERT takes: waits for running
            # writers to commit (their messages are then visible), blocks new ones until done.
            cursor.execute("LOCK TABLE campaigns_campaigndailystat IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(
                "DELETE FROM campaigns_campaigndailystat WHERE campaign_id = %s", [campaign.pk]
            )
            cursor.execute(
                f"INSERT INTO campaigns_campaigndailystat "  # noqa: S608 - constants
                f"(campaign_id, step_id, variant_id, day, {columns}) "
                f"SELECT %(campaign)s, raw.* FROM ({RAW_SQL}) raw",
                {"campaign": campaign.pk},
            )
            return cursor.rowcount
