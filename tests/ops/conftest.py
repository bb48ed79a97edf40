"""Fixtures for ops tests: a live sandbox SMTP server and helpers for real subprocesses."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from penguinmails.sandbox.smtp import start_sandbox_smtp
from penguinmails.sandbox.store import SandboxStore

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MANAGE = str(ROOT / "manage.py")


@dataclass
class LiveSandbox:
    host: str
    port: int
    maildir: Path
    store: SandboxStore
    user: str = "sandbox-user"
    password: str = "sandbox-pass-123"


@pytest.fixture
def sandbox_smtp(tmp_path: Path) -> Iterator[LiveSandbox]:
    maildir = tmp_path / "maildir"
    live = LiveSandbox(host="127.0.0.1", port=0, maildir=maildir, store=SandboxStore(maildir))
    controller = start_sandbox_smtp("127.0.0.1", 0, maildir, user=live.user, password=live.password)
    live.port = controller.port
    try:
        yield live
    finally:
        controller.stop()


def subprocess_env(**overrides: str | None) -> dict[str, str]:
    """This test run's environment (DATABASE_URL, REDIS_URL, keys) with overrides; None unsets."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DJANGO_SETTINGS_MODULE"] = "penguinmails.settings"
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def the_test_database_url() -> str:
    """DATABASE_URL of the database this test run uses (test_<name>), for child processes.

    The one place that turns Django's connection settings back into a URL: a unix-socket host
    (the embedded PostgreSQL of `make test` without DATABASE_URL) is percent-encoded, or its
    slashes would be read as the database name.
    """
    from urllib.parse import quote, urlencode

    from django.db import connection

    db = connection.settings_dict
    user = quote(db.get("USER") or "postgres", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = str(db.get("HOST") or "127.0.0.1")
    if host.startswith("/"):
        host = quote(host, safe="")
    elif ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    options = {k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{user}{password}@{host}{port}/{quote(db['NAME'], safe='')}{query}"
