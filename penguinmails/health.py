"""Health endpoints (seed: /health, /health/db, /health/queue, /health/email).

Answered by a middleware placed before tenant routing, so they work on any host and still answer
(503) when the database that routing needs is down. JSON with status and latency; 200 when
healthy, 503 when not.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from penguinmails.queue.health import queue_metrics

Check = Callable[[], dict[str, Any]]


class Health(StrEnum):
    """A check's and the whole answer's `status`."""

    OK = "ok"
    FAIL = "fail"


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


def check_db() -> dict[str, Any]:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # A failed check must not leave a broken connection for the next request.
        if connection.connection is not None and not connection.is_usable():
            connection.close()
    return {}


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def check_redis() -> dict[str, Any]:
    """Redis answers (throttle counters, cache, Celery broker, live job status)."""
    client = redis_client()
    try:
        client.ping()
    finally:
        client.close()  # one check, one connection: never a pool left behind per call
    return {}


def check_queue() -> dict[str, Any]:
    client = redis_client()
    try:
        client.ping()
        detail: dict[str, Any] = {"broker": "ok"}
        extra = _queue_metrics()
        if extra is not None:
            detail.update(extra)
        return detail
    finally:
        client.close()


def _queue_metrics() -> dict[str, Any] | None:
    """Job-queue figures (penguinmails.queue)."""
    return queue_metrics()


def check_email() -> dict[str, Any]:
    with smtplib.SMTP(settings.EMAIL_HOST, settings.EMAIL_PORT, timeout=3) as smtp:
        code, _ = smtp.noop()
    return {"ok": code == 250, "smtp": f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"}


CHECKS: dict[str, dict[str, Check]] = {
    "/health/db": {"db": check_db},
    "/health/queue": {"queue": check_queue},
    "/health/email": {"email": check_email},
}


def run_checks(path: str) -> tuple[int, dict[str, Any]]:
    started = time.perf_counter()
    if path == "/health":
        # Liveness plus the two stores every request needs.
        checks = {"db": check_db, "redis": check_redis}
    else:
        checks = CHECKS[path]
    results = {name: _timed(check) for name, check in checks.items()}
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


__all__ = ["HealthCheckMiddleware", "run_checks"]
