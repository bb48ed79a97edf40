"""The Redis buffer between the tracking endpoints and PostgreSQL (docs/tracking.md).

Endpoints LPUSH one compact JSON event per hit onto `tracking:events` (one round trip, no
database). The `tracking.flush` job claims a batch with one Lua call that moves the oldest events
to `tracking:processing`, writes them in one PostgreSQL transaction and only then deletes the
processing list; if the write fails, the batch stays there and the next flush takes it again
before anything new. One flusher at a time holds `tracking:flush:lock`, so a batch is never
written twice by two flushers.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from campaigns.tracking.tokens import TokenKind
from penguinmails.queue import live

EVENTS_KEY = "tracking:events"
PROCESSING_KEY = "tracking:processing"
ATTEMPTS_KEY = "tracking:processing:attempts"
DEAD_KEY = "tracking:dead"
DROPPED_KEY = "tracking:dropped"
LOCK_KEY = "tracking:flush:lock"
MAX_BATCH = 5000  # Lua's unpack() takes at most ~8,000 values
OPEN, CLICK, UNSUBSCRIBE = TokenKind.OPEN, TokenKind.CLICK, TokenKind.UNSUBSCRIBE


@dataclass(frozen=True)
class Event:
    """One hit as the endpoint saw it; the flusher decides whether a machine made it."""

    kind: TokenKind
    tenant_id: int
    message_pk: int
    at: float  # Unix time
    ip: str = ""
    user_agent: str = ""
    url: str = ""
    head: bool = False  # a HEAD request (link checkers use HEAD)

    def encode(self) -> str:
        return json.dumps(
            [
                1,
                self.kind,
                self.tenant_id,
                self.message_pk,
                round(self.at, 3),
                self.ip,
                self.user_agent,
                self.url,
                int(self.head),
            ],
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: bytes | str) -> Event | None:
        """The event, or None when the item is not one (dropped, never retried)."""
        try:
            item: Any = json.loads(raw)
            version, kind, tenant, message, at, ip, ua, url, head = item
            if version != 1 or kind not in (OPEN, CLICK, UNSUBSCRIBE):
                return None
            return cls(TokenKind(kind), int(tenant), int(message), float(at), str(ip), str(ua),
                       str(url), bool(head))  # fmt: skip
        except (ValueError, TypeError):
            return None


def push(event: Event) -> None:
    """Buffer one event. Raises redis.RedisError when Redis is unreachable."""
    live.client().lpush(EVENTS_KEY, event.encode())


# The oldest `n` events (the list's tail: producers push at its head) move to the processing
# list, unless it still holds a batch a failed flush left there: that one is returned again.
_CLAIM_LUA = """
local pending = redis.call('LRANGE', KEYS[2], 0, -1)
if #pending > 0 then return pending end
local items = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], 0, -#items - 1)
redis.call('RPUSH', KEYS[2], unpack(items))
redis.call('DEL', KEYS[3])
return items
"""
# Done with the batch: delete it, but only while this flusher still holds the lock (if the lock
# expired, another flusher may have taken the batch over; it deletes it after writing).
_ACK_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_BURY_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
if #items > 0 then redis.call('RPUSH', KEYS[4], unpack(items)) end
redis.call('DEL', KEYS[2], KEYS[3])
return #items
"""


class Claim:
    """The flusher's hold on the buffer: the lock, then batches claimed and acknowledged."""

    def __init__(self, client: redis.Redis, lock_seconds: int) -> None:
        self.client = client
        self.token = uuid.uuid4().hex
        self.lock_ms = lock_seconds * 1000

    def acquire(self) -> bool:
        return bool(self.client.set(LOCK_KEY, self.token, nx=True, px=self.lock_ms))

    def extend(self) -> None:
        self.client.pexpire(LOCK_KEY, self.lock_ms)

    def release(self) -> None:
        self.client.eval(_RELEASE_LUA, 1, LOCK_KEY, self.token)

    def next_batch(self, size: int) -> list[bytes]:
        """Oldest first."""
        items = self.client.eval(
            _CLAIM_LUA, 3, EVENTS_KEY, PROCESSING_KEY, ATTEMPTS_KEY, min(size, MAX_BATCH)
        )
        return list(reversed(items))

    def ack(self) -> bool:
        return bool(
            self.client.eval(_ACK_LUA, 3, LOCK_KEY, PROCESSING_KEY, ATTEMPTS_KEY, self.token)
        )

    def failed_attempt(self) -> int:
        """Count a failed write of the current batch; the count is reset by the next claim."""
        return int(self.client.incr(ATTEMPTS_KEY))

    def bury(self) -> int:
        """Move the current batch to `tracking:dead` (for a person to look at)."""
        return int(
            self.client.eval(
                _BURY_LUA, 4, LOCK_KEY, PROCESSING_KEY, ATTEMPTS_KEY, DEAD_KEY, self.token
            )
        )


def count_dropped(n: int) -> None:
    if n:
        live.client().incrby(DROPPED_KEY, n)


def depth() -> dict[str, int]:
    """Waiting, in flight, buried and dropped-so-far counts (ops and tests)."""
    client = live.client()
    pipe = client.pipeline(transaction=False)
    pipe.llen(EVENTS_KEY)
    pipe.llen(PROCESSING_KEY)
    pipe.llen(DEAD_KEY)
    pipe.get(DROPPED_KEY)
    waiting, processing, dead, dropped = pipe.execute()
    return {
        "waiting": int(waiting),
        "processing": int(processing),
        "dead": int(dead),
        "dropped": int(dropped or 0),
    }


def now() -> float:
    return time.time()
