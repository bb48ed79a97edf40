"""The Redis buffer between the tracking endpoints and PostgreSQL (docs/tracking.md).

Endpoints LPUSH one compact JSON event per hit onto `tracking:events` (one round trip, no
database). The `tracking.flush` job claims a batch with one Lua call that moves the oldest events
to `tracking:processing`, writes them in one PostgreSQL transaction and only then deletes the
processing list; if the write fails, the batch stays there and the next flush takes it again
before anything new. One flusher at a time holds `tracking:flush:lock`, so a batch is never
written twice by two flushers.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import ssl
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from campaigns.tracking.tokens import TokenKind
from penguinmails.queue import live

log = logging.getLogger(__name__)
EVENTS_KEY = "tracking:events"
PROCESSING_KEY = "tracking:processing"
ATTEMPTS_KEY = "tracking:processing:attempts"
DEAD_KEY = "tracking:dead"
DROPPED_KEY = "tracking:dropped"
LOCK_KEY = "tracking:flush:lock"
MAX_BATCH = 5000  # Lua's unpack() takes at most ~8,000 values
OPEN, CLICK, UNSUBSCRIBE = TokenKind.OPEN, TokenKind.CLICK, TokenKind.UNSUBSCRIBE
# One encoder: json.dumps builds a new one per call when given `separators` (~3 µs).
_JSON = json.JSONEncoder(separators=(",", ":"))


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
        return _JSON.encode(
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
            ]
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
    """Buffer one event: its LPUSH is written to Redis at once, its reply read later (`_Pusher`).
    Raises redis.RedisError when Redis is unreachable."""
    _pusher.lpush(event.encode().encode())


def settle() -> None:
    """Wait for all the replies to this process's pushes (what `depth` and the flusher's claim
    see then includes them). Raises redis.RedisError if Redis failed any."""
    _pusher.settle()


class _Pusher:
    """The endpoints' LPUSH, on one connection per process that redis-py opened (its URL parsing,
    AUTH, SELECT, TLS), written on the socket itself; the reply is read later, not waited for.

    redis-py 8's command path (pool checkout, retry policy, reply callbacks) costs ~45 µs of CPU
    a call, and waiting for the reply another ~25-40 µs (the worker sleeps in `recv` and is woken:
    two context switches), against ~30 µs for the rest of the request (docs/tracking.md,
    "Speed"). So a push writes its command and returns: the event is in Redis's socket before the
    response leaves. The socket stays non-blocking, so a push is one `send` system call (a socket
    with a timeout polls before each send, and switching it to non-blocking and back for a read
    costs two more calls); only a full send buffer or a wait for replies polls, within redis-py's
    socket timeout. The replies that have come in are read, without waiting, once `READ_AT`
    commands are unanswered (one `recv` for many pushes), and waited for past `WINDOW`, at
    `settle` and at the process's exit. A connection found closed (end of file, a reset, a broken
    pipe: Redis restarted, its idle `timeout`, CLIENT KILL) ran none of the commands it has not
    answered: they are written again, once, on a new connection. An error reply or a timeout
    costs those events, logged, as a Redis that is down does.
    """

    READ_AT = 16
    WINDOW = 64

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """A new process's state (also in a forked child: the parent's socket, commands and lock
        are not its own)."""
        self.lock = threading.Lock()
        self.conn: Any = None
        self.sock: Any = None
        self.timeout: float | None = None
        self.url = ""
        self.unacked: deque[bytes] = deque()
        self.partial = b""

    def lpush(self, value: bytes) -> None:
        command = b"%s$%d\r\n%s\r\n" % (_LPUSH, len(value), value)
        with self.lock:
            if self.url != settings.REDIS_URL:
                self._switch()
            self.unacked.append(command)
            self._write(command)
            if len(self.unacked) >= self.READ_AT:
                self._read(wait=len(self.unacked) >= self.WINDOW)

    def settle(self) -> None:
        with self.lock:
            refused: redis.ResponseError | None = None
            while self.sock is not None and self.unacked:
                try:
                    self._read(wait=True)
                except redis.ResponseError as exc:
                    refused = exc  # the other replies are read all the same
            if refused is not None:
                raise refused

    def _switch(self) -> None:
        # The same process, another Redis (tests): the old one's replies first.
        self._settle_quietly()
        self._drop()
        self.unacked.clear()
        self.url = settings.REDIS_URL

    def _settle_quietly(self) -> None:
        while self.sock is not None and self.unacked:
            try:
                self._read(wait=True)
            except redis.RedisError:
                pass  # logged (refused replies one by one, the rest by `_lose`)

    def _connect(self) -> None:
        pool = live.client().connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)
        conn.connect()
        sock = conn._sock
        self.timeout = sock.gettimeout()
        sock.setblocking(False)
        self.conn, self.sock, self.partial = conn, sock, b""

    def _write(self, command: bytes) -> None:
        """Write `command` (the last of `unacked`); on a connection found closed, all of
        `unacked` again on a new one."""
        again = self.sock is None
        try:
            if again:
                self._connect()
                self._send(b"".join(self.unacked))
            else:
                self._send(command)
            return
        except redis.RedisError as exc:
            self._lose(exc)
            raise
        except TimeoutError as exc:  # part of a command may be written: the stream is unusable
            self._lose(exc)
            raise redis.TimeoutError(str(exc)) from exc
        except OSError as exc:
            if again:
                self._lose(exc)
                raise redis.ConnectionError(str(exc)) from exc
            self._drop()
        self._resend()

    def _resend(self) -> None:
        try:
            self._connect()
            self._send(b"".join(self.unacked))
        except (OSError, redis.RedisError) as exc:
            self._lose(exc)
            if isinstance(exc, redis.RedisError):
                raise
            raise redis.ConnectionError(str(exc)) from exc

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except ssl.SSLWantReadError:
                self._poll(select.POLLIN)
            except (BlockingIOError, ssl.SSLWantWriteError):
                self._poll(select.POLLOUT)

    def _poll(self, event: int) -> None:
        """Until the socket is ready for `event`, within the connection's timeout."""
        poller = select.poll()
        poller.register(self.sock, event)
        if not poller.poll(None if self.timeout is None else self.timeout * 1000):
            raise TimeoutError("Redis did not answer within the socket timeout")

    def _read(self, *, wait: bool) -> None:
        """Take the replies that have come in (`wait`: at least one)."""
        while True:
            try:
                chunk = self.sock.recv(65536)
                break
            except (BlockingIOError, ssl.SSLWantReadError):
                if not wait:
                    return
                try:
                    self._poll(select.POLLIN)
                except TimeoutError as exc:  # the commands may have run
                    self._lose(exc)
                    raise redis.TimeoutError(str(exc)) from exc
            except ConnectionResetError:
                chunk = b""
                break
            except OSError as exc:
                self._lose(exc)
                raise redis.ConnectionError(str(exc)) from exc
        if not chunk:
            # Closed: what it has not answered was not run.
            self._drop()
            if self.unacked:
                self._resend()
            return
        *lines, self.partial = (self.partial + chunk).split(b"\r\n")
        refused = 0
        for line in lines:
            if self.unacked:
                self.unacked.popleft()
            if not line.startswith(b":"):
                refused += 1
                log.warning("tracking: an event was refused by Redis: %s", line[:200])
        if refused:
            raise redis.ResponseError(f"{refused} tracking events refused by Redis")

    def _lose(self, exc: BaseException) -> None:
        if len(self.unacked) > 1:
            log.warning("tracking: %d events lost: %s", len(self.unacked), exc)
        self.unacked.clear()
        self._drop()

    def _drop(self) -> None:
        conn, self.conn, self.sock = self.conn, None, None
        self.partial = b""
        if conn is not None:
            conn.disconnect()  # redis-py's: a socket already broken closes quietly


_LPUSH = b"*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n" % (len(EVENTS_KEY), EVENTS_KEY.encode())
_pusher = _Pusher()
# A forked child (a gunicorn worker, a Celery child) starts with no connection and no commands.
os.register_at_fork(after_in_child=_pusher.forget)
atexit.register(_pusher._settle_quietly)


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
        _settle_quietly()
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


def _settle_quietly() -> None:
    # This process's own pushes first (an endpoint and a flusher or a test in one process).
    with _pusher.lock:
        _pusher._settle_quietly()


def count_dropped(n: int) -> None:
    if n:
        live.client().incrby(DROPPED_KEY, n)


def depth() -> dict[str, int]:
    """Waiting, in flight, buried and dropped-so-far counts (ops and tests)."""
    _settle_quietly()
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
