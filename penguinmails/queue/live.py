"""Live job status in Redis (`job:<id>` hashes) and worker presence.

All of this is a convenience for dashboards and ops: PostgreSQL holds the truth, so every write
here is best effort and losing Redis loses nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from django.conf import settings

from penguinmails.queue.queues import CONSUME_ORDER

log = logging.getLogger(__name__)

STATUS_TTL_SECONDS = 24 * 3600
WORKERS_KEY = "queue:workers"
# A worker that has not refreshed its presence for this long is considered gone.
WORKER_PRESENCE_SECONDS = 30

_clients: dict[str, redis.Redis] = {}


def client() -> redis.Redis:
    """One client per URL and process (redis-py's pool reconnects after fork by itself)."""
    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[url]


def status_key(job_id: int) -> str:
    return f"job:{job_id}"


# HSET and EXPIRE as one command: this runs twice per job, and redis-py's per-command overhead
# is most of its cost.
_SET_STATUS_LUA = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
_scripts: dict[int, Any] = {}


def set_status(job_id: int, **fields: str) -> None:
    set_statuses([(job_id, fields)])


def set_statuses(updates: list[tuple[int, dict[str, str]]], *, peek: str | None = None) -> int:
    """Several jobs' fields in one round trip (a batch records one job's end and the next one's
    start together). With `peek`, the same round trip also counts the messages waiting in that
    Celery queue, which is returned (0 without `peek` or when Redis fails): a batch stops early
    when urgent work waits (penguinmails.queue.batch)."""
    if not updates and peek is None:
        return 0
    try:
        conn = client()
        script = _scripts.get(id(conn))
        if script is None:
            script = _scripts[id(conn)] = conn.register_script(_SET_STATUS_LUA)
        pipe = conn.pipeline(transaction=False) if len(updates) > 1 or peek else None
        for job_id, fields in updates:
            args: list[Any] = [STATUS_TTL_SECONDS]
            for name, value in fields.items():
                args += [name, value]
            script(keys=[status_key(job_id)], args=args, client=pipe or conn)
        if pipe is None:
            return 0
        if peek is not None:
            pipe.llen(peek)
        replies = pipe.execute()
        return int(replies[-1]) if peek is not None else 0
    except redis.RedisError as exc:
        log.warning("jobs %s: live status not written: %s", [u[0] for u in updates], exc)
        return 0


def waiting_messages(queue: str) -> int:
    """Messages waiting in one Celery queue (0 when Redis fails: a hint, never the truth)."""
    try:
        return int(client().llen(queue))  # type: ignore[arg-type]
    except redis.RedisError as exc:
        log.warning("queue %s not counted: %s", queue, exc)
        return 0


def note_skipped_delivery(job_id: int) -> None:
    """Counts deliveries that lost the claim (duplicates), visible as `skipped` in the hash."""
    try:
        pipe = client().pipeline(transaction=False)
        pipe.hincrby(status_key(job_id), "skipped", 1)
        pipe.expire(status_key(job_id), STATUS_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("job %s: skipped delivery not counted: %s", job_id, exc)


def get_status(job_id: int) -> dict[str, str]:
    raw = client().hgetall(status_key(job_id))
    return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]


def announce_worker(worker: str) -> None:
    """Called every few seconds by each worker process; the score is the time last seen."""
    try:
        now = time.time()
        pipe = client().pipeline(transaction=False)
        pipe.zadd(WORKERS_KEY, {worker: now})
        pipe.zremrangebyscore(WORKERS_KEY, 0, now - WORKER_PRESENCE_SECONDS * 10)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("worker presence not announced: %s", exc)


def withdraw_worker(worker: str) -> None:
    try:
        client().zrem(WORKERS_KEY, worker)
    except redis.RedisError as exc:
        log.warning("worker presence not withdrawn: %s", exc)


def live_workers() -> list[str]:
    since = time.time() - WORKER_PRESENCE_SECONDS
    members = client().zrangebyscore(WORKERS_KEY, since, "+inf")
    return sorted(m.decode() for m in members)  # type: ignore[union-attr]


def broker_depth() -> dict[str, int]:
    """Messages waiting in each Celery queue (kombu's Redis transport keeps one list each)."""
    pipe = client().pipeline(transaction=False)
    for queue in CONSUME_ORDER:
        pipe.llen(queue.value)
    return {q.value: int(n) for q, n in zip(CONSUME_ORDER, pipe.execute(), strict=True)}
