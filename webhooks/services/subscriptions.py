"""Which events have an enabled endpoint in the current tenant schema, cached per process.

`emit()` is called on hot paths (each sent message, each tracking flush): when nobody in the
workspace subscribed to the event, it must cost no query. The answer is cached per schema for
WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS; every endpoint write in this process clears it at once, and
other processes (workers) see the change within that time (docs/webhooks.md).
"""

from __future__ import annotations

import threading
import time
from typing import cast

from django.conf import settings
from django.db import connection

from penguinmails.db import TenantConnection
from webhooks.models import Endpoint, EndpointStatus

_cache: dict[str, tuple[float, frozenset[str]]] = {}
_lock = threading.Lock()


def _schema() -> str:
    return cast(TenantConnection, connection).schema_name


def subscribed_events() -> frozenset[str]:
    """The event names at least one enabled endpoint of this schema subscribes to."""
    schema = _schema()
    now = time.monotonic()
    hit = _cache.get(schema)
    if hit is not None and hit[0] > now:
        return hit[1]
    rows = Endpoint.objects.filter(status=EndpointStatus.ENABLED).values_list("events", flat=True)
    events = frozenset(str(name) for names in rows for name in (names or []))
    with _lock:
        _cache[schema] = (now + settings.WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS, events)
    return events


def has_subscribers(event: str) -> bool:
    return event in subscribed_events()


def forget(schema: str | None = None) -> None:
    """Drop the cached answer of `schema` (default: the current one), after an endpoint write."""
    with _lock:
        _cache.pop(schema or _schema(), None)
