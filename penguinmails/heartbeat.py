"""Beat's heartbeat: beat publishes `penguinmails.beat_heartbeat` every few seconds to the high
queue (penguinmails.schedule) and a worker writes the time into Redis. /health/queue fails when
the time is stale: beat stopped, or no worker drains the high queue."""

from __future__ import annotations

import time

import redis

BEAT_KEY = "health:beat"
# Long enough to outlive any sensible staleness threshold, short enough to vanish after a
# decommission.
KEY_TTL_SECONDS = 24 * 3600


def beat(client: redis.Redis, *, at: float | None = None) -> float:
    now = time.time() if at is None else at
    client.set(BEAT_KEY, repr(now), ex=KEY_TTL_SECONDS)
    return now


def last_beat(client: redis.Redis) -> float | None:
    """Unix time of the last heartbeat, None when there was none."""
    raw = client.get(BEAT_KEY)
    if raw is None:
        return None
    try:
        return float(raw)  # type: ignore[arg-type]
    except ValueError:
        return None
