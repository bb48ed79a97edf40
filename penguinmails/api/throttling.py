"""Request rate limits for the API, counted atomically in Redis.

Each budget is a sliding window kept as a sorted set of request times, checked and extended by one
Lua script: of any number of concurrent requests, exactly the budget's worth get through (DRF's
SimpleRateThrottle reads its history, appends and writes it back, so parallel requests all read
the same history and all pass). The window's clock is Redis's own TIME, so web servers with
drifting clocks share one window.

When Redis is unreachable the API keeps answering: the throttle lets requests through (fails
open), logs a warning at most once a minute per process, and does not try Redis again for a few
seconds, so an outage does not add a connection timeout to every request.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

log = logging.getLogger(__name__)

# KEYS[1]: the window's sorted set. ARGV: limit, window in ms, a unique member for this request.
# Returns {1, 0} when admitted, {0, ms until the oldest request leaves the window} when refused.
_SLIDING_WINDOW_LUA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] == nil then return {0, window} end  -- a budget of 0: nothing ever leaves
return {0, tonumber(oldest[2]) + window - now_ms}
"""

# After a Redis failure, requests skip the throttle this long before Redis is tried again.
RETRY_REDIS_AFTER_SECONDS = 5.0
# A failing Redis is logged at most this often per process.
WARN_EVERY_SECONDS = 60.0


class _RedisState:
    """The process's client and script, and when Redis last failed (shared by threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.url = ""
        self.client: redis.Redis | None = None
        self.script: Any = None
        self.down_until = 0.0
        self.last_warning = float("-inf")

    def script_for(self, url: str) -> Any:
        with self.lock:
            if self.client is None or url != self.url:
                # Short timeouts: a throttle that waits seconds for Redis is worse than none.
                self.client = redis.Redis.from_url(
                    url, socket_timeout=0.5, socket_connect_timeout=0.5
                )
                self.script = self.client.register_script(_SLIDING_WINDOW_LUA)
                self.url = url
            return self.script

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self.lock:
            self.down_until = now + RETRY_REDIS_AFTER_SECONDS
            warn = now - self.last_warning >= WARN_EVERY_SECONDS
            if warn:
                self.last_warning = now
        if warn:
            log.warning("API rate limits not enforced: Redis unreachable (%s)", exc)


_state = _RedisState()


class TenantRateThrottle(SimpleRateThrottle):
    """One budget per API key, or per member session, within a tenant.

    The rate is `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["tenant"]` (env `API_THROTTLE_RATE`),
    read on every request: DRF's own THROTTLE_RATES is frozen when the class is defined, which
    would ignore a setting changed later (tests, or an override per deployment).
    """

    scope = "tenant"
    cache_format = "throttle:%(scope)s:%(ident)s"

    def __init__(self) -> None:
        super().__init__()
        self._wait_ms = 0

    def get_rate(self) -> str | None:
        rates: dict[str, str | None] = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        return rates.get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = getattr(request._request, "principal", None)
        if principal is None:
            ident = f"ip:{self.get_ident(request)}"
        elif principal.api_key is not None:
            ident = f"t{principal.tenant.pk}:key:{principal.api_key.pk}"
        else:
            ident = f"t{principal.tenant.pk}:user:{principal.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        num_requests, duration = self.parse_rate(self.rate)
        if num_requests is None or duration is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None or time.monotonic() < _state.down_until:
            return True
        try:
            script = _state.script_for(settings.REDIS_URL)
            admitted, wait_ms = script(
                keys=[key], args=[num_requests, duration * 1000, uuid.uuid4().hex]
            )
        except redis.RedisError as exc:
            _state.failed(exc)
            return True
        self._wait_ms = int(wait_ms)
        return bool(admitted)

    def wait(self) -> float | None:
        # Whole seconds, rounded up: Retry-After 0 would invite an immediate retry that fails.
        return max(1, -(-self._wait_ms // 1000))
