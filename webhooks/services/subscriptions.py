"""Which events have an enabled endpoint in the current tenant schema, cached per process.

`emit()` is called on hot paths (each send batch, each tracking flush, each reply read): when
nobody in the workspace subscribed to the event, it must cost no query. The answer is kept per
process and schema; every endpoint write bumps a version in Redis (after commit), and a process
compares its copy's version at most once per WEBHOOK_SUBSCRIPTIONS_CHECK_SECONDS (1 s), so a new
endpoint receives events from every worker within about a second. Should Redis not answer, the
copy is trusted for WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS (30 s) at most, then read again from the
database: the send path never fails because of this cache (docs/webhooks.md).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name

from penguinmails.db import TenantConnection
from webhooks.models import Endpoint, EndpointStatus

log = logging.getLogger("penguinmails.webhooks")


@dataclass(frozen=True)
class _Entry:
    events: frozenset[str]
    version: str | None  # Redis's version when read (None: Redis did not answer)
    fetched_at: float
    checked_at: float


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()


def _schema() -> str:
    return cast(TenantConnection, connection).schema_name


def _key(schema: str) -> str:
    return f"webhooks:subscriptions:{schema}"


def _version(schema: str) -> str | None:
    try:
        value = cache.get(_key(schema))
    except Exception:  # noqa: BLE001 - Redis down: fall back on the copy's age, never fail a send
        log.warning("webhook subscriptions: Redis did not answer; using the cached copy")
        return None
    return str(value) if value is not None else "0"


def subscribed_events() -> frozenset[str]:
    """The event names at least one enabled endpoint of this schema subscribes to."""
    schema = _schema()
    if schema == get_public_schema_name():
        return frozenset()  # endpoints live in tenant schemas only: nothing to send from public
    now = time.monotonic()
    hit = _cache.get(schema)
    if hit is not None and now - hit.checked_at < settings.WEBHOOK_SUBSCRIPTIONS_CHECK_SECONDS:
        return hit.events
    version = _version(schema)
    fresh = hit is not None and now - hit.fetched_at < settings.WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS
    if hit is not None and fresh and (version is None or version == hit.version):
        entry = _Entry(hit.events, hit.version, hit.fetched_at, now)
    else:
        rows = Endpoint.objects.filter(status=EndpointStatus.ENABLED).values_list(
            "events", flat=True
        )
        events = frozenset(str(name) for names in rows for name in (names or []))
        entry = _Entry(events, version, now, now)
    with _lock:
        _cache[schema] = entry
    return entry.events


def has_subscribers(event: str) -> bool:
    return event in subscribed_events()


def forget(schema: str | None = None) -> None:
    """After an endpoint write: drop this process's copy now, and bump the version in Redis
    once the write commits, so every other process reads the endpoints again."""
    schema = schema or _schema()
    with _lock:
        _cache.pop(schema, None)

    def bump() -> None:
        try:
            cache.set(_key(schema), uuid.uuid4().hex, timeout=None)
        except Exception:  # noqa: BLE001 - other processes catch up within the cache's age
            log.warning("webhook subscriptions: version not bumped (Redis did not answer)")

    transaction.on_commit(bump)
