"""Bounded probes for health checks and metrics scrapes: none may hang its caller.

A statement timeout on every query (SET LOCAL, so it ends with the probe's transaction) and a
Redis client with short socket timeouts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import connection, transaction


@contextmanager
def bounded_queries(timeout_ms: int) -> Iterator[None]:
    """Queries inside are cancelled by PostgreSQL after `timeout_ms` milliseconds each."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{timeout_ms}ms"])
        yield


_clients: dict[tuple[str, float], redis.Redis] = {}


def redis_client(timeout_s: float) -> redis.Redis:
    """A client of REDIS_URL whose connect and every command give up after `timeout_s`. One per
    URL and timeout in each process: its pool keeps connections open between probes (a connect
    costs more than the PING), and reconnects by itself after Redis comes back."""
    key = (settings.REDIS_URL, timeout_s)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
    return client
