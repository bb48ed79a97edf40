"""Figures read at scrape time: queue depth and age, database connections, messages sent,
bounced, complained and replied. Read from PostgreSQL and Redis, where they are true whichever
process changed them; each read is bounded (penguinmails.probes) and a failing one is reported
as `penguinmails_scrape_error{collector}` instead of failing the whole scrape."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from django.conf import settings
from django.db import connection
from django.utils import timezone
from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from penguinmails.db import TenantConnection
from penguinmails.models import JobStatus
from penguinmails.probes import bounded_queries, redis_client
from penguinmails.queue.live import WORKER_PRESENCE_SECONDS, WORKERS_KEY
from penguinmails.queue.queues import CONSUME_ORDER

log = logging.getLogger(__name__)

QUEUES = [q.value for q in CONSUME_ORDER]

# Waiting jobs by queue band and status: ready in PostgreSQL (queued, retrying and due), or
# published to the broker (enqueued), or running. Bands as penguinmails.queue.queues.queue_for.
_QUEUE_SQL = """
    SELECT CASE WHEN priority <= 50 THEN 'high' WHEN priority <= 150 THEN 'default' ELSE 'low'
           END AS queue, status, count(*), min(run_at)
    FROM jobs
    WHERE status IN (%s, %s, %s, %s) AND (status IN (%s, %s) OR run_at <= %s)
    GROUP BY 1, 2
"""


def queue_families() -> list[Metric]:
    now = timezone.now()
    ready = GaugeMetricFamily(
        "penguinmails_queue_ready_jobs",
        "Jobs due and waiting in PostgreSQL (queued or retrying), by queue.",
        labels=["queue"],
    )
    enqueued = GaugeMetricFamily(
        "penguinmails_queue_enqueued_jobs",
        "Jobs published to the broker and not yet started, by queue.",
        labels=["queue"],
    )
    running = GaugeMetricFamily(
        "penguinmails_queue_running_jobs", "Jobs running now, by queue.", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        "penguinmails_queue_oldest_waiting_age_seconds",
        "Age of the oldest due job not started yet (ready or enqueued), by queue; 0 when none.",
        labels=["queue"],
    )
    statuses = [JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.ENQUEUED, JobStatus.RUNNING]
    params: list[str | dt.datetime] = [
        *(s.value for s in statuses), JobStatus.ENQUEUED.value, JobStatus.RUNNING.value, now,
    ]  # fmt: skip
    figures: dict[tuple[str, str], tuple[int, Any]] = {}
    with bounded_queries(settings.METRICS_QUERY_TIMEOUT_MS), connection.cursor() as cursor:
        cursor.execute(_QUEUE_SQL, params)
        for queue, status, n, first in cursor.fetchall():
            figures[(queue, status)] = (int(n), first)
        cursor.execute("SELECT count(*) FROM jobs WHERE status = %s", [str(JobStatus.DEAD)])
        dead_row = cursor.fetchone()
    dead_count = int(dead_row[0]) if dead_row else 0

    def count(queue: str, *wanted: str) -> int:
        return sum(figures.get((queue, s), (0, None))[0] for s in wanted)

    for queue in QUEUES:
        ready.add_metric([queue], count(queue, JobStatus.QUEUED, JobStatus.RETRYING))
        enqueued.add_metric([queue], count(queue, JobStatus.ENQUEUED))
        running.add_metric([queue], count(queue, JobStatus.RUNNING))
        firsts = [
            first
            for status in (JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.ENQUEUED)
            if (first := figures.get((queue, status), (0, None))[1]) is not None
        ]
        age = (now - min(firsts)).total_seconds() if firsts else 0.0
        oldest.add_metric([queue], max(age, 0.0))
    dead = GaugeMetricFamily(
        "penguinmails_queue_dead_jobs", "Jobs that failed for good and wait for `jobs retry`."
    )
    dead.add_metric([], dead_count)
    return [ready, enqueued, running, oldest, dead]


def broker_families() -> list[Metric]:
    depth = GaugeMetricFamily(
        "penguinmails_queue_broker_messages",
        "Messages waiting in each Celery queue in Redis.",
        labels=["queue"],
    )
    workers = GaugeMetricFamily(
        "penguinmails_queue_workers", "Celery worker nodes seen in the last 30 seconds."
    )
    pipe = redis_client(settings.METRICS_QUERY_TIMEOUT_MS / 1000).pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
    pipe.zcount(WORKERS_KEY, timezone.now().timestamp() - WORKER_PRESENCE_SECONDS, "+inf")
    *lengths, seen = pipe.execute()
    for queue, length in zip(QUEUES, lengths, strict=True):
        depth.add_metric([queue], int(length))
    workers.add_metric([], int(seen))
    return [depth, workers]


def db_families() -> list[Metric]:
    connections = GaugeMetricFamily(
        "penguinmails_db_connections",
        "Connections to this database by state (pg_stat_activity).",
        labels=["state"],
    )
    limit = GaugeMetricFamily(
        "penguinmails_db_max_connections", "PostgreSQL's max_connections setting."
    )
    with bounded_queries(settings.METRICS_QUERY_TIMEOUT_MS), connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() GROUP BY 1"
        )
        rows = dict(cursor.fetchall())
        cursor.execute("SELECT current_setting('max_connections')::int")
        max_connections = int(cursor.fetchone()[0])
    for state in sorted({"active", "idle", "idle in transaction", *rows}):
        connections.add_metric([state], int(rows.get(state, 0)))
    limit.add_metric([], max_connections)
    return [connections, limit]


MESSAGE_EVENTS = ("sent", "bounced", "complained", "replied")


def message_families() -> list[Metric]:
    """Sends, bounces, complaints and replies as counters: the platform's daily counts
    (penguinmails.indexes, bumped in the same transaction as each tenant's rollups) summed over
    all days, so they are exact whichever process counted, and rate() gives them per minute."""
    messages = CounterMetricFamily(
        "penguinmails_messages",
        "Messages sent, bounced, complained about and replied to, platform-wide.",
        labels=["event"],
    )
    columns = ", ".join(f"coalesce(sum({name}), 0)" for name in MESSAGE_EVENTS)
    with bounded_queries(settings.METRICS_QUERY_TIMEOUT_MS), connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM platform_daily_stats")  # noqa: S608 - constants
        totals = cursor.fetchone()
    for name, total in zip(MESSAGE_EVENTS, totals, strict=True):
        messages.add_metric([name], int(total))
    return [messages]


COLLECTORS: dict[str, Callable[[], list[Metric]]] = {
    "queue": queue_families,
    "broker": broker_families,
    "db": db_families,
    "messages": message_families,
}


class ScrapeTimeCollector:
    """All of the above for one scrape, each collector on its own: one failing (PostgreSQL or
    Redis down) leaves the others and the counted metrics."""

    def __init__(self, collectors: dict[str, Callable[[], list[Metric]]] | None = None) -> None:
        self.collectors = COLLECTORS if collectors is None else collectors

    def collect(self) -> Iterator[Metric]:
        # Answered before tenant routing: the connection may still hold the last request's
        # tenant schema on its search path; every table read here is public.
        cast(TenantConnection, connection).set_schema_to_public()
        errors = GaugeMetricFamily(
            "penguinmails_scrape_error",
            "1 when this collector could not read its figures during this scrape.",
            labels=["collector"],
        )
        for name, collect in self.collectors.items():
            try:
                families: Iterable[Metric] = collect()
            except Exception as exc:  # noqa: BLE001 - reported as a metric, not a failed scrape
                log.warning("metrics collector %s failed: %s", name, exc)
                _recover_connection()
                errors.add_metric([name], 1)
                continue
            errors.add_metric([name], 0)
            yield from families
        yield errors


def _recover_connection() -> None:
    if connection.connection is not None and not connection.is_usable():
        connection.close()
