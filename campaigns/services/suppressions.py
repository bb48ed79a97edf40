"""Set-based suppression writes for the send path (docs/sending.md). One address or domain by
hand goes through `leads.add_suppression` (validated, audited); `suppress_many` is its bulk form
for addresses the pipeline already holds normalized (a chunk's hard bounces): one INSERT per
1,000 values, idempotent, the first reason kept. The suppression is recorded on each message
(`stopped_by`, `smtp_response`), so no audit row per address."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection

from campaigns.models import LeadStatus, SuppressionReason


def suppress_many(
    addresses: Iterable[str], *, reason: SuppressionReason, source: str, at: datetime
) -> int:
    """Suppress these addresses (lower-cased) unless already suppressed; returns how many are
    new."""
    values = sorted({a.lower() for a in addresses if a})
    added = 0
    for start in range(0, len(values), 1000):
        part = values[start : start + 1000]
        body = ", ".join(["(%s::text)"] + ["(%s)"] * (len(part) - 1))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO campaigns_suppression (value, is_domain, reason, source, created_at)
                SELECT v.value, false, %s, %s, %s FROM (VALUES {body}) AS v(value)
                ON CONFLICT (value) DO NOTHING
                """,  # noqa: S608 - the VALUES list is placeholders only
                [reason.value, source[:200], at, *part],
            )
            added += cursor.rowcount
    return added


def suppress_rows(rows: Iterable[tuple[str, SuppressionReason, str]], *, at: datetime) -> int:
    """`suppress_many` with a reason and a source per address (the inbound poller's chunk: each
    bounce or complaint its own): the first row of an address kept, one INSERT per 1,000 rows,
    addresses already suppressed left as they are. Returns how many are new."""
    first: dict[str, tuple[str, str]] = {}
    for value, why, source in rows:
        if value:
            first.setdefault(value.lower(), (why.value, source[:200]))
    items = list(first.items())
    added = 0
    for start in range(0, len(items), 1000):
        part = items[start : start + 1000]
        body = ", ".join(["(%s::text, %s::text, %s::text)"] * len(part))
        params: list[Any] = [at]
        for value, (why_value, source) in part:
            params.extend([value, why_value, source])
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO campaigns_suppression (value, is_domain, reason, source, created_at)
                SELECT v.value, false, v.reason, v.source, %s
                FROM (VALUES {body}) AS v(value, reason, source)
                ON CONFLICT (value) DO NOTHING
                """,  # noqa: S608 - the VALUES list is placeholders only
                params,
            )
            added += cursor.rowcount
    return added


def mark_leads_bounced(lead_ids: Iterable[int], *, at: datetime) -> int:
    """Active or replied leads become bounced (one statement); returns how many changed."""
    ids = sorted(set(lead_ids))
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_lead SET status = %s, updated_at = %s WHERE id = ANY(%s) "
            "AND status IN (%s, %s)",
            [LeadStatus.BOUNCED.value, at, ids, LeadStatus.ACTIVE.value, LeadStatus.REPLIED.value],
        )
        return int(cursor.rowcount)


__all__ = ["mark_leads_bounced", "suppress_many", "suppress_rows"]
