"""Product analytics: server-side events to PostHog through the `posthog` package (pinned).

`capture(event, tenant, properties)` sends one event after the current transaction commits (at
once outside one), grouped by tenant (`groups={"tenant": slug}`) with the tenant's slug as the
distinct id: events describe what a workspace did, never who a lead is. Off while
POSTHOG_API_KEY is empty. Properties are checked against PERSONAL_KEYS: an email address or a
name never leaves (docs/billing.md, "PostHog").

Events (the issue's list): "signed up", "plan chosen", "plan changed", "payment failed",
"domain verified", "mailbox connected", "campaign started".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

EVENTS = frozenset(
    {
        "signed up",
        "plan chosen",
        "plan changed",
        "payment failed",
        "domain verified",
        "mailbox connected",
        "campaign started",
    }
)
# Property names that could carry a person's data: refused (a programming error, logged).
PERSONAL_KEYS = frozenset({"email", "name", "first_name", "last_name", "address", "phone", "to"})
_VALUE_TYPES = (str, int, float, bool, type(None))


class _Tenant(Protocol):
    slug: str


_lock = threading.Lock()
_client: Any = None
_client_key: tuple[str, str] = ("", "")


def client() -> Any:
    """The process's PostHog client for the current key and host, or None when off."""
    global _client, _client_key
    key, host = settings.POSTHOG_API_KEY, settings.POSTHOG_HOST
    if not key:
        return None
    with _lock:
        if _client is None or _client_key != (key, host):
            from posthog import Posthog

            if _client is not None:
                _client.shutdown()
            # sync_mode: one small POST per event from the thread that committed; no
            # background thread to lose events at process exit.
            _client = Posthog(key, host=host, sync_mode=True, timeout=5, max_retries=1)
            _client_key = (key, host)
        return _client


def _clean(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in (properties or {}).items():
        if name.lower() in PERSONAL_KEYS or "@" in str(value):
            log.error("analytics: property %r dropped (personal data is never sent)", name)
            continue
        clean[name] = value if isinstance(value, _VALUE_TYPES) else str(value)
    return clean


def analytics_enabled() -> bool:
    return bool(settings.POSTHOG_API_KEY)


def capture(event: str, tenant: _Tenant, properties: Mapping[str, Any] | None = None) -> None:
    """Send `event` for `tenant` after commit; nothing without POSTHOG_API_KEY."""
    if not settings.POSTHOG_API_KEY:
        return
    if event not in EVENTS:
        raise ValueError(f"unknown analytics event {event!r}")
    slug = tenant.slug
    props = _clean(properties)

    def _send() -> None:
        ph = client()
        if ph is None:
            return
        try:
            ph.capture(
                event,
                distinct_id=f"tenant:{slug}",
                properties={**props, "$process_person_profile": False},
                groups={"tenant": slug},
            )
        except Exception:  # noqa: BLE001 - analytics never breaks the action it reports
            log.warning("analytics: %s for %s not sent", event, slug, exc_info=True)

    transaction.on_commit(_send)
