"""The seed's four alert conditions, each on real data with a steered clock: it fires on its
condition and resolves when the condition clears."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from penguinmails import indexes
from penguinmails.alerts import Alert, AlertState, evaluate_rules
from penguinmails.alerts import middleware as counters
from penguinmails.models import PlatformDailyStat
from penguinmails.queue.producer import JobSpec, enqueue_many
from penguinmails.queue.services import cancel_job
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def _state(rule: str, subject: str) -> str | None:
    row = Alert.objects.filter(rule=rule, subject=subject).order_by("-id").first()
    return row.state if row is not None else None


@pytest.fixture
def fresh_counters() -> Iterator[None]:
    """Our own Redis db (the brief's): drop only this module's minute buckets."""
    redis = counters.client()
    for key in redis.scan_iter(f"{counters.BUCKET_PREFIX}*"):
        redis.delete(key)
    yield


def test_error_rate_fires_above_5_percent_over_5_minutes_and_clears(
    cast: Cast, settings: Any, fresh_counters: None
) -> None:
    settings.PUBLIC_SCHEMA_URLCONF = "tests.alerts.urls"
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    for _ in range(19):
        assert client.get("/test-alerts/fine/").status_code == 200
    assert client.get("/test-alerts/boom/").status_code == 500
    now = timezone.now()
    evaluate_rules(now)  # 1 of 20: exactly 5 %, not above
    assert _state("http.error_rate", "platform") is None
    assert client.get("/test-alerts/boom/").status_code == 500
    evaluate_rules(now)  # 2 of 21: 9.5 %
    alert = Alert.objects.get(rule="http.error_rate", subject="platform")
    assert alert.state == AlertState.FIRING
    assert alert.detail["requests"] == 21 and alert.detail["errors"] == 2
    # Five minutes on, those minutes have left the window: it clears.
    evaluate_rules(now + dt.timedelta(minutes=5))
    assert _state("http.error_rate", "platform") == AlertState.RESOLVED


def test_health_checks_are_not_counted(cast: Cast, fresh_counters: None) -> None:
    Client(HTTP_HOST="localhost").get("/health")
    assert counters.window(5, now=timezone.now().timestamp())["requests"] == 0


def test_queue_backlog_fires_past_1000_jobs_waiting_over_10_minutes_and_clears(
    cast: Cast, settings: Any
) -> None:
    now = timezone.now()
    old = now - dt.timedelta(minutes=11)
    jobs = enqueue_many(JobSpec("platform.noop", {}, run_at=old) for _ in range(1001))
    enqueue_many(JobSpec("platform.noop", {}, run_at=now) for _ in range(5))  # not waiting long
    evaluate_rules(now)
    assert _state("queue.backlog", "queue") == AlertState.FIRING
    cancel_job(jobs[0])
    evaluate_rules(now)  # 1,000 left: not more than 1,000
    assert _state("queue.backlog", "queue") == AlertState.RESOLVED


def _sleeping_query(seconds: float, started: threading.Event, pid: list[int]) -> None:
    params = connection.get_connection_params()
    dsn = {k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")}
    with psycopg.connect(**dsn, autocommit=True) as conn:
        pid.append(conn.info.backend_pid)
        started.set()
        try:
            conn.execute("SELECT pg_sleep(%s)", [seconds])
        except psycopg.errors.QueryCanceled:
            pass


def test_slow_queries_fire_on_a_statement_running_over_2_seconds_and_clear(
    cast: Cast, fresh_counters: None
) -> None:
    started, pid = threading.Event(), []
    sleeper = threading.Thread(target=_sleeping_query, args=(30, started, pid))
    sleeper.start()
    try:
        assert started.wait(10)
        # Steered clock: evaluated as if 3 seconds from now, the sleeper has run over 2 s.
        for _ in range(100):  # until the sleeper's statement has begun
            evaluate_rules(timezone.now() + dt.timedelta(seconds=3))
            if _state("db.slow_queries", "database") == AlertState.FIRING:
                break
            time.sleep(0.05)
        alert = Alert.objects.get(rule="db.slow_queries", subject="database")
        assert alert.state == AlertState.FIRING
        assert pid[0] in [q["pid"] for q in alert.detail["running"]]
        assert "pg_sleep" in alert.detail["running"][0]["query"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_cancel_backend(%s)", [pid[0]])
        sleeper.join(10)
    evaluate_rules(timezone.now() + dt.timedelta(seconds=3))
    last = Alert.objects.filter(rule="db.slow_queries").order_by("-id").first()
    assert last is not None and last.state == AlertState.RESOLVED, last.detail


def test_slow_queries_recorded_in_requests_fire_and_age_out(
    cast: Cast, settings: Any, fresh_counters: None
) -> None:
    settings.ALERTS_SLOW_QUERY_MS = 0  # every statement of the request counts as slow
    Client(HTTP_HOST=f"{cast.tenant.slug}.localhost").get("/login/")
    now = timezone.now()
    evaluate_rules(now)
    alert = Alert.objects.get(rule="db.slow_queries", subject="database")
    assert alert.state == AlertState.FIRING and alert.detail["recent_slow_requests"] >= 1
    settings.ALERTS_SLOW_QUERY_MS = 2000
    evaluate_rules(now + dt.timedelta(minutes=5))
    assert _state("db.slow_queries", "database") == AlertState.RESOLVED


def test_platform_bounce_rate_fires_above_15_percent_and_clears(cast: Cast, settings: Any) -> None:
    settings.PROTECTION_PLATFORM_MIN_SENDS = 1000
    now = timezone.now()
    today = now.date()
    PlatformDailyStat.objects.filter(day__gte=today - dt.timedelta(days=1)).delete()
    indexes.bump_platform_daily(today, sent=850, bounced=150)  # 15.0 %: not above
    evaluate_rules(now)
    assert _state("platform.bounce_rate", "platform") is None
    indexes.bump_platform_daily(today - dt.timedelta(days=1), sent=0, bounced=10)
    evaluate_rules(now)  # 160 of 1010: 15.8 %
    alert = Alert.objects.get(rule="platform.bounce_rate", subject="platform")
    assert alert.state == AlertState.FIRING and alert.detail["bounce_rate"] == 0.1584
    # Two days on, yesterday's and today's counts are out of the window: it clears.
    evaluate_rules(now + dt.timedelta(days=2))
    assert _state("platform.bounce_rate", "platform") == AlertState.RESOLVED


def test_the_counters_never_fail_a_request_when_redis_is_down(cast: Cast, settings: Any) -> None:
    settings.PUBLIC_SCHEMA_URLCONF = "tests.alerts.urls"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    assert client.get("/test-alerts/fine/").status_code == 200
    assert client.get("/test-alerts/boom/").status_code == 500  # the view's own error, no other
