"""Per-campaign status counters: a campaign's messages and enrollments by status in O(1).

PostgreSQL keeps them (migration 0012): statement-level triggers on the messages and
enrollments tables append one delta row per (campaign, kind, status) each statement changed,
whatever wrote it (the ORM, `states.transition_each`'s `UPDATE ... FROM (VALUES ...)`, COPY,
deletes and cascades). Appending, never updating a shared row, keeps concurrent send workers
from queueing on one hot row. `compact` folds a tenant's deltas into one row each, every minute
for tenants with a running campaign (the beat's `campaigns-counts-compact`); a read adds up the
campaign's few rows, whether folded yet or not, so it is exact either way.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import CountKind
from penguinmails import indexes
from penguinmails.queue.producer import JobSpec, enqueue_many
from tenants.models import Tenant

COMPACT_DUE_TASK = "campaigns.counts_compact_due"
COMPACT_TASK = "campaigns.counts_compact"
TABLE = "campaigns_campaignstatuscount"

# One statement, so totals hold whatever runs beside it: the DELETE takes the rows its snapshot
# sees (a delta committed meanwhile stays for the next run; a row another compaction took first
# is skipped, not summed twice) and the INSERT writes their sums back. Only groups with more than
# one row are folded, and rows of deleted campaigns (no foreign key) are dropped.
_COMPACT = f"""
WITH loose AS (
    SELECT campaign_id, kind, status FROM {TABLE}
    GROUP BY campaign_id, kind, status HAVING count(*) > 1 OR sum(n) = 0
    UNION
    SELECT s.campaign_id, s.kind, s.status FROM {TABLE} s
    WHERE NOT EXISTS (SELECT 1 FROM campaigns_campaign c WHERE c.id = s.campaign_id)
), taken AS (
    DELETE FROM {TABLE} s USING loose l
    WHERE s.campaign_id = l.campaign_id AND s.kind = l.kind AND s.status = l.status
    RETURNING s.campaign_id, s.kind, s.status, s.n
), folded AS (
    INSERT INTO {TABLE} (campaign_id, kind, status, n)
    SELECT t.campaign_id, t.kind, t.status, sum(t.n) FROM taken t
    WHERE EXISTS (SELECT 1 FROM campaigns_campaign c WHERE c.id = t.campaign_id)
    GROUP BY t.campaign_id, t.kind, t.status HAVING sum(t.n) <> 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM folded)
"""  # noqa: S608 - a constant table name


def read(campaign_id: int) -> dict[str, dict[str, int]]:
    """{kind: {status: n}} of one campaign: one query over its rows (index on campaign_id)."""
    found: dict[str, dict[str, int]] = {kind: {} for kind in CountKind.values}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT kind, status, sum(n) FROM {TABLE} "  # noqa: S608 - a constant
            "WHERE campaign_id = %s GROUP BY kind, status",
            [campaign_id],
        )
        for kind, status, n in cursor.fetchall():
            found.setdefault(kind, {})[status] = int(n)
    return found


def compact() -> tuple[int, int]:
    """Fold the current schema's delta rows into one row per (campaign, kind, status); returns
    (rows taken, rows written)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_COMPACT)
        taken, written = cursor.fetchone()
    return int(taken), int(written)


def enqueue_compactions() -> int:
    """Public: one compaction job per tenant with a running campaign (the public index; no loop
    over tenant schemas). Others write little: their deltas wait for their next run, and reads
    stay exact meanwhile. Returns the tenants."""
    ids = indexes.due_running_tenants(timezone.now() + dt.timedelta(days=3650))
    tenants = Tenant.objects.filter(pk__in=ids)
    with transaction.atomic():
        enqueue_many(
            JobSpec(COMPACT_TASK, {}, t, idempotency_key=f"{COMPACT_TASK}:{t.pk}") for t in tenants
        )
    return len(ids)
