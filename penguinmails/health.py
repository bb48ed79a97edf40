"""Health endpoints (seed: /health, /health/db, /health/queue, /health/email).

Answered by a middleware placed before tenant routing, so they work on any host and still answer
(503) when the database that routing needs is down. JSON with status and latency; 200 when
healthy, 503 when not.

Every endpoint answers within HEALTH_TIMEOUT_MS or fails: its probes run in a small thread pool
against that deadline, and a probe still running then is reported failed ("no answer within").
Each probe also carries its own timeout (socket and Redis timeouts, PostgreSQL's
statement_timeout), so a hung dependency does not keep a thread for long. Probes that read
PostgreSQL do it on the pool thread's own connection, closed after each probe.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from penguinmails import heartbeat
from penguinmails.models import READY_STATUSES, JobStatus
from penguinmails.probes import bounded_queries, redis_client

Check = Callable[[], dict[str, Any]]
# (check name, host, port) of each SMTP server /health/email probes besides EMAIL_HOST.
MailServerSource = Callable[[], Iterable[tuple[str, str, int]]]

# Seed alert condition, kept on /health/queue: more than 1,000 jobs waiting for over 10 minutes.
BACKLOG_ALERT_JOBS = 1000
BACKLOG_ALERT_AGE = dt.timedelta(minutes=10)


class Health(StrEnum):
    """A check's and the whole answer's `status`."""

    OK = "ok"
    FAIL = "fail"


_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")
_mail_server_sources: list[MailServerSource] = []
_sources_lock = threading.Lock()


def register_mail_servers(source: MailServerSource) -> None:
    """The infrastructure app names the active mail servers at start-up (its AppConfig.ready)."""
    with _sources_lock:
        if source not in _mail_server_sources:
            _mail_server_sources.append(source)


def budget_seconds() -> float:
    return settings.HEALTH_TIMEOUT_MS / 1000


def _timed(check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
        ok = bool(detail.pop("ok", True))
        result: dict[str, Any] = {"status": Health.OK if ok else Health.FAIL, **detail}
    except Exception as exc:  # noqa: BLE001 - any failure is the answer we report
        result = {"status": Health.FAIL, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _on_own_connection(check: Check) -> Check:
    """For a pool thread: run `check` on this thread's connection and close it afterwards (no
    connection is left open per thread, and a broken one never outlives its probe)."""

    def probe() -> dict[str, Any]:
        try:
            return check()
        finally:
            connection.close()

    return probe


# --- the probes -------------------------------------------------------------------------------
def _statement_ms() -> int:
    return max(settings.HEALTH_TIMEOUT_MS - 10, 10)


def check_db() -> dict[str, Any]:
    with bounded_queries(_statement_ms()), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_redis() -> dict[str, Any]:
    """Redis answers (throttle counters, cache, Celery broker, live job status)."""
    redis_client(budget_seconds()).ping()
    return {}


def check_beat() -> dict[str, Any]:
    last = heartbeat.last_beat(redis_client(budget_seconds()))
    limit = settings.HEALTH_BEAT_STALE_SECONDS
    if last is None:
        return {"ok": False, "error": "beat has never sent its heartbeat"}
    age = round(time.time() - last, 1)
    detail: dict[str, Any] = {"heartbeat_age_s": age}
    if age > limit:
        detail.update(ok=False, error=f"beat's heartbeat is {age:.0f}s old (limit {limit}s)")
    return detail


_JOBS_SQL = """
    SELECT
      (SELECT min(run_at) FROM jobs WHERE status IN (%s, %s) AND run_at <= %s),
      (SELECT min(run_at) FROM jobs WHERE status = %s),
      EXISTS (SELECT 1 FROM jobs WHERE status = %s),
      GREATEST((SELECT max(finished_at) FROM jobs WHERE status = %s),
               (SELECT max(finished_at) FROM jobs WHERE status = %s)),
      (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status IN (%s, %s, %s) AND run_at < %s
                             LIMIT %s) AS backlog)
"""


def check_jobs() -> dict[str, Any]:
    """Fails when due jobs have waited HEALTH_QUEUE_STALL_SECONDS while no job ran or finished
    (workers or the migrator stalled), and on the seed's backlog condition."""
    now = timezone.now()
    stall = dt.timedelta(seconds=settings.HEALTH_QUEUE_STALL_SECONDS)
    ready = [s.value for s in READY_STATUSES]
    params: list[str | int | dt.datetime] = [
        *ready, now, JobStatus.ENQUEUED.value, JobStatus.RUNNING.value,
        JobStatus.COMPLETED.value, JobStatus.DEAD.value,
        *ready, JobStatus.ENQUEUED.value, now - BACKLOG_ALERT_AGE, BACKLOG_ALERT_JOBS + 1,
    ]  # fmt: skip
    with bounded_queries(_statement_ms()), connection.cursor() as cursor:
        cursor.execute(_JOBS_SQL, params)
        oldest_ready, oldest_enqueued, running, last_finished, backlog = cursor.fetchone()
    waiting_since = min((t for t in (oldest_ready, oldest_enqueued) if t), default=None)
    detail: dict[str, Any] = {
        "oldest_waiting_age_s": round((now - waiting_since).total_seconds(), 1)
        if waiting_since
        else 0.0,
        "last_finished_age_s": round((now - last_finished).total_seconds(), 1)
        if last_finished
        else None,
        "running": bool(running),
        "waiting_over_10_min": backlog,
    }
    idle = not running and (last_finished is None or now - last_finished > stall)
    if waiting_since is not None and now - waiting_since > stall and idle:
        detail.update(
            ok=False,
            error=f"jobs have waited {detail['oldest_waiting_age_s']:.0f}s and none ran or "
            f"finished in the last {stall.total_seconds():.0f}s: workers or beat stalled",
        )
    elif backlog > BACKLOG_ALERT_JOBS:
        detail.update(ok=False, error=f"over {BACKLOG_ALERT_JOBS} jobs waiting over 10 minutes")
    return detail


def smtp_probe(host: str, port: int) -> Check:
    def check() -> dict[str, Any]:
        with smtplib.SMTP(host, port, timeout=budget_seconds()) as smtp:
            code, _ = smtp.ehlo()
            smtp.close()  # no QUIT round trip: the answer is in
        detail: dict[str, Any] = {}  # no host: the answer is public
        if code != 250:
            detail.update(ok=False, error=f"EHLO answered {code}")
        return detail

    return check


def mail_server_checks() -> dict[str, Check]:
    """Each active mail server once per (host, port), EMAIL_HOST's aside (probed on its own)."""
    checks: dict[str, Check] = {}
    seen = {(settings.EMAIL_HOST, settings.EMAIL_PORT)}
    for source in list(_mail_server_sources):
        for name, host, port in source():
            if (host, port) not in seen:
                seen.add((host, port))
                checks[f"mail:{name}"] = smtp_probe(host, port)
    return checks


# --- running them against the deadline --------------------------------------------------------
Futures = dict[str, "Future[dict[str, Any]]"]


def _submit(checks: dict[str, Check]) -> Futures:
    return {name: _pool.submit(_timed, check) for name, check in checks.items()}


def _late(error: str = "") -> dict[str, Any]:
    return {
        "status": Health.FAIL,
        "error": error or f"no answer within {settings.HEALTH_TIMEOUT_MS} ms",
        "latency_ms": float(settings.HEALTH_TIMEOUT_MS),
    }


def _collect(futures: Futures, deadline: float) -> dict[str, dict[str, Any]]:
    wait_for(futures.values(), timeout=max(deadline - time.monotonic(), 0))
    results = {}
    for name, future in futures.items():
        if future.done():
            results[name] = future.result()
        else:
            future.cancel()
            results[name] = _late()
    return results


def _email_checks(deadline: float) -> dict[str, dict[str, Any]]:
    """EMAIL_HOST's probe starts at once, beside the listing of the mail servers (a query), whose
    probes start as soon as it answers; a failed listing fails the answer but not that probe."""
    futures = _submit({"email": smtp_probe(settings.EMAIL_HOST, settings.EMAIL_PORT)})
    listing = _pool.submit(_on_own_connection(mail_server_checks))
    failed: dict[str, dict[str, Any]] = {}
    try:
        futures.update(_submit(listing.result(timeout=max(deadline - time.monotonic(), 0))))
    except Exception as exc:  # noqa: BLE001 - the listing failing is itself the answer
        late = not listing.done()
        listing.cancel()
        failed["mail_servers"] = _late("" if late else f"{type(exc).__name__}: {exc}"[:300])
    return {**_collect(futures, deadline), **failed}


def checks_for(path: str) -> dict[str, Check]:
    if path == "/health":
        # Liveness plus the two stores every request needs.
        return {"db": _on_own_connection(check_db), "redis": check_redis}
    if path == "/health/db":
        return {"db": _on_own_connection(check_db)}
    if path == "/health/queue":
        return {"broker": check_redis, "jobs": _on_own_connection(check_jobs), "beat": check_beat}
    raise KeyError(path)


def run_checks(path: str) -> tuple[int, dict[str, Any]]:
    started = time.perf_counter()
    deadline = time.monotonic() + budget_seconds()
    if path == "/health/email":
        results = _email_checks(deadline)
    else:
        results = _collect(_submit(checks_for(path)), deadline)
    healthy = all(r["status"] == Health.OK for r in results.values())
    body = {
        "status": Health.OK if healthy else Health.FAIL,
        "checks": results,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    return (200 if healthy else 503), body


class HealthCheckMiddleware:
    PATHS = frozenset({"/health", "/health/db", "/health/queue", "/health/email"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        if path not in self.PATHS or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        status, body = run_checks(path)
        response = JsonResponse(body, status=status, json_dumps_params={"indent": None})
        response["Cache-Control"] = "no-store"
        return response


__all__ = ["HealthCheckMiddleware", "register_mail_servers", "run_checks"]
