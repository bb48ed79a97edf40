"""The core's own periodic rules, the seed's four alert conditions, registered at import by
AlertsConfig.ready. Each takes the evaluation time (`now`) so tests steer the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection

from penguinmails import indexes
from penguinmails.alerts import middleware
from penguinmails.alerts.rules import Finding, register_rule
from penguinmails.alerts.severity import Severity
from penguinmails.models import Job, JobStatus

PLATFORM = "platform"
# Waiting: due and not started (in PostgreSQL, or published to the broker but not claimed).
WAITING = (JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.ENQUEUED)


@register_rule("http.error_rate")
def error_rate(now: dt.datetime) -> Iterable[Finding]:
    """More than ALERTS_ERROR_RATE_PERCENT of requests answered 5xx over the last
    ALERTS_ERROR_RATE_MINUTES minutes (the middleware's per-minute counts)."""
    minutes = settings.ALERTS_ERROR_RATE_MINUTES
    counts = middleware.window(minutes, now=now.timestamp())
    requests, errors = counts["requests"], counts["errors"]
    limit = settings.ALERTS_ERROR_RATE_PERCENT
    least = max(1, settings.ALERTS_ERROR_RATE_MIN_REQUESTS)
    if requests < least or errors * 100 <= limit * requests:
        return []
    rate = 100 * errors / requests
    return [
        Finding(
            PLATFORM,
            f"Error rate {rate:.1f} % over {minutes} minutes ({errors} of {requests} requests "
            f"answered 5xx), above {limit} %.",
            Severity.CRITICAL,
            {"requests": requests, "errors": errors, "rate": round(rate / 100, 4)},
        )
    ]


@register_rule("queue.backlog")
def queue_backlog(now: dt.datetime) -> Iterable[Finding]:
    """More than ALERTS_QUEUE_BACKLOG_JOBS jobs due for longer than ALERTS_QUEUE_BACKLOG_MINUTES
    and not started (the durable queue's table)."""
    minutes = settings.ALERTS_QUEUE_BACKLOG_MINUTES
    limit = settings.ALERTS_QUEUE_BACKLOG_JOBS
    since = now - dt.timedelta(minutes=minutes)
    # Count one past the limit at most: the answer is only "more than the limit or not".
    waiting = Job.objects.filter(status__in=WAITING, run_at__lte=since)
    count = waiting.order_by()[: limit + 1].count()
    if count <= limit:
        return []
    return [
        Finding(
            "queue",
            f"More than {limit} jobs have waited over {minutes} minutes.",
            Severity.CRITICAL,
            {"waiting_over_limit": True, "limit": limit, "minutes": minutes},
        )
    ]


_RUNNING_SQL = """
    SELECT pid, EXTRACT(EPOCH FROM (%s - query_start))::float8, left(query, 200)
    FROM pg_stat_activity
    WHERE state = 'active' AND backend_type = 'client backend' AND datname = current_database()
      AND pid <> pg_backend_pid() AND query_start < %s
    ORDER BY query_start LIMIT 5
"""


@register_rule("db.slow_queries")
def slow_queries(now: dt.datetime) -> Iterable[Finding]:
    """Statements over ALERTS_SLOW_QUERY_MS: running now (pg_stat_activity), or finished within
    the last ALERTS_ERROR_RATE_MINUTES minutes of web requests (the middleware's recorder)."""
    limit = dt.timedelta(milliseconds=settings.ALERTS_SLOW_QUERY_MS)
    with connection.cursor() as cursor:
        # pg_stat_activity is read once per transaction, then served from that snapshot.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_RUNNING_SQL, [now, now - limit])
        running = cursor.fetchall()
    recent = middleware.window(settings.ALERTS_ERROR_RATE_MINUTES, now=now.timestamp())["slow"]
    if not running and not recent:
        return []
    detail: dict[str, Any] = {
        "running": [{"pid": pid, "seconds": round(s, 1), "query": q} for pid, s, q in running],
        "recent_slow_requests": recent,
    }
    parts = []
    if running:
        parts.append(f"{len(running)} running (longest {max(s for _, s, _ in running):.0f} s)")
    if recent:
        parts.append(f"{recent} in recent requests")
    seconds = settings.ALERTS_SLOW_QUERY_MS / 1000
    return [Finding("database", f"Queries over {seconds:g} s: {', '.join(parts)}.", detail=detail)]


@register_rule("platform.bounce_rate")
def bounce_rate(now: dt.datetime) -> Iterable[Finding]:
    """The platform's bounce rate today and yesterday (PlatformDailyStat) above
    ALERTS_BOUNCE_RATE_PERCENT, once it has at least PROTECTION_PLATFORM_MIN_SENDS sends."""
    since = now.date() - dt.timedelta(days=1)
    sent, bounced, complained = indexes.platform_totals(since)
    sends = sent + bounced
    limit = settings.ALERTS_BOUNCE_RATE_PERCENT
    if sends < settings.PROTECTION_PLATFORM_MIN_SENDS or bounced * 100 <= limit * sends:
        return []
    return [
        Finding(
            PLATFORM,
            f"Platform bounce rate {100 * bounced / sends:.1f} % ({bounced} of {sends} sends, "
            f"today and yesterday) passed {limit} %. See the sender rates in the admin; bad "
            "senders pause themselves.",
            Severity.CRITICAL,
            {
                "since": since.isoformat(),
                "sends": sends,
                "bounced": bounced,
                "complained": complained,
                "bounce_rate": round(bounced / sends, 4),
            },
        )
    ]
