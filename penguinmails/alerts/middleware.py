"""What the error-rate and slow-query rules read: per-minute counts in Redis, kept by this
middleware (independent of the Prometheus metrics). Each request adds to its minute's hash
(`alerts:http:<minute>`: requests, errors for 5xx, slow for statements over
ALERTS_SLOW_QUERY_MS), which expires after BUCKET_TTL_SECONDS. Never fails a request: a Redis
outage only leaves the counts short (logged once a minute at most)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

BUCKET_PREFIX = "alerts:http:"
BUCKET_TTL_SECONDS = 15 * 60  # the window the rules read, and then some

_clients: dict[str, redis.Redis] = {}
_last_warning = 0.0


def client() -> redis.Redis:
    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _clients[url]


def minute_of(at: float) -> int:
    return int(at // 60)


def bucket_key(minute: int) -> str:
    return f"{BUCKET_PREFIX}{minute}"


def record(*, error: bool, slow: int = 0, at: float | None = None) -> None:
    """Count one request (an error when it answered 5xx, with `slow` slow statements)."""
    global _last_warning
    key = bucket_key(minute_of(time.time() if at is None else at))
    try:
        pipe = client().pipeline(transaction=False)
        pipe.hincrby(key, "requests", 1)
        if error:
            pipe.hincrby(key, "errors", 1)
        if slow:
            pipe.hincrby(key, "slow", slow)
        pipe.expire(key, BUCKET_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError:
        if time.monotonic() - _last_warning > 60:
            _last_warning = time.monotonic()
            log.warning("alert counters: Redis unavailable, request not counted")


def window(minutes: int, *, now: float) -> dict[str, int]:
    """Summed counts of the last `minutes` minutes up to `now` (the current minute included)."""
    last = minute_of(now)
    pipe = client().pipeline(transaction=False)
    for minute in range(last - minutes + 1, last + 1):
        pipe.hgetall(bucket_key(minute))
    totals = {"requests": 0, "errors": 0, "slow": 0}
    for bucket in pipe.execute():
        for name, value in bucket.items():
            field = name.decode()
            if field in totals:
                totals[field] += int(value)
    return totals


class SlowQueryRecorder:
    """A connection.execute_wrapper counting statements slower than ALERTS_SLOW_QUERY_MS."""

    def __init__(self) -> None:
        self.slow = 0
        self.limit = settings.ALERTS_SLOW_QUERY_MS / 1000

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.monotonic()
        try:
            return execute(sql, params, many, context)
        finally:
            if time.monotonic() - started > self.limit:
                self.slow += 1


class AlertCountersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        recorder = SlowQueryRecorder()
        try:
            with connection.execute_wrapper(recorder):
                response = self.get_response(request)
        except Exception:
            # Django turns a view's exception into a 500 below us; this is one that got past.
            record(error=True, slow=recorder.slow)
            raise
        record(error=response.status_code >= 500, slow=recorder.slow)
        return response
