"""Queue figures for /health/queue (called by penguinmails.health.check_queue)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from penguinmails.models import READY_STATUSES, Job, JobStatus
from penguinmails.queue import live

# Seed alert condition: more than 1,000 jobs waiting for more than 10 minutes.
BACKLOG_ALERT_JOBS = 1000
BACKLOG_ALERT_AGE = dt.timedelta(minutes=10)

BANDS = {
    "high": Q(priority__lte=50),
    "default": Q(priority__gt=50, priority__lte=150),
    "low": Q(priority__gt=150),
}


def queue_metrics() -> dict[str, Any]:
    """Fails (ok False) on the seed's backlog alert; workers are reported, not judged."""
    now = timezone.now()
    # Waiting = due and not started: ready in PostgreSQL or sitting in the broker.
    waiting = Job.objects.filter(status__in=[*READY_STATUSES, JobStatus.ENQUEUED], run_at__lte=now)
    figures = waiting.aggregate(
        stale=Count("pk", filter=Q(run_at__lt=now - BACKLOG_ALERT_AGE)),
        oldest=Min("run_at"),
        **{band: Count("pk", filter=cond) for band, cond in BANDS.items()},
    )
    oldest = figures["oldest"]
    stale = figures["stale"]
    return {
        "ok": stale <= BACKLOG_ALERT_JOBS,
        "waiting_by_queue": {band: figures[band] for band in BANDS},
        "waiting_over_10_min": stale,
        "oldest_ready_age_s": round((now - oldest).total_seconds(), 1) if oldest else 0.0,
        "running": Job.objects.filter(status=JobStatus.RUNNING).count(),
        "dead": Job.objects.filter(status=JobStatus.DEAD).count(),
        "broker_depth": live.broker_depth(),
        "workers": len(live.live_workers()),
    }
