"""Test-only job handlers, loaded by real workers through PM_EXTRA_HANDLER_MODULES.

They report what they saw to Redis lists (`test:runs:<token>`), which the tests read back.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from django.contrib.sessions.models import Session
from django.db import connection

from penguinmails.queue import live
from penguinmails.queue.registry import JobContext, Payload, job_handler

EFFECTS_TABLE = "queue_test_effects"


class FlakyError(Exception):
    """The transient error `test.fail` raises."""


def report(token: str, context: JobContext, **extra: Any) -> None:
    entry = {
        "job_id": context.job_id,
        "attempt": context.attempt,
        "pid": os.getpid(),
        "worker": context.worker_id,
        "schema": connection.schema_name,
        "at": time.time(),
        **extra,
    }
    live.client().rpush(f"test:runs:{token}", json.dumps(entry))


@job_handler("test.record")
def record(payload: Payload, context: JobContext) -> None:
    """Reports the schema it runs in and the session keys that schema shows it."""
    keys = sorted(Session.objects.values_list("session_key", flat=True))
    report(payload["token"], context, sessions=keys)


@job_handler("test.record_tenant", tenant_scoped=True)
def record_tenant(payload: Payload, context: JobContext) -> None:
    record(payload, context)


@job_handler("test.effect")
def effect(payload: Payload, context: JobContext) -> None:
    """Sleeps on its first attempt (so a test can kill it), then counts its effect once per run."""
    report(payload["key"], context)
    if context.attempt == 1:
        time.sleep(float(payload.get("first_sleep", 0)))
    time.sleep(float(payload.get("sleep", 0)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO public.{EFFECTS_TABLE} (key, runs) VALUES (%s, 1) "  # noqa: S608
            "ON CONFLICT (key) DO UPDATE SET runs = public.queue_test_effects.runs + 1",
            [payload["key"]],
        )


@job_handler("test.fail", transient=(FlakyError,), max_attempts=3)
def fail(payload: Payload, context: JobContext) -> None:
    """Fails with a transient error while the Redis key test:fail:<token> exists."""
    report(payload["token"], context)
    if live.client().exists(f"test:fail:{payload['token']}"):
        raise FlakyError(f"flaky on attempt {context.attempt}")


@job_handler("test.gate")
def gate(payload: Payload, context: JobContext) -> None:
    """Holds its worker until the test opens test:gate:<token> (at most a minute)."""
    report(payload["token"], context)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not live.client().exists(f"test:gate:{payload['token']}"):
        time.sleep(0.02)


@job_handler("test.die")
def die(payload: Payload, context: JobContext) -> None:
    """Kills its own process, every time."""
    report(payload["token"], context)
    os.kill(os.getpid(), signal.SIGKILL)


@job_handler("test.noop")
def noop(payload: Payload, context: JobContext) -> None:
    pass


@job_handler("test.slow", timeout=1, max_attempts=2)
def slow(payload: Payload, context: JobContext) -> None:
    """Outlives its one-second time limit (a batch must cut it there and go on)."""
    report(payload["token"], context)
    time.sleep(5)
    report(payload["token"], context, finished=True)
