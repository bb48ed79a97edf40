"""Health endpoints: 200 with status and latency when healthy, 503 when a dependency is down.

The outage cases run the app for real (gunicorn in a subprocess) against a closed port, so
start-up, routing and the middleware order are tested as deployed.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from penguinmails import heartbeat
from penguinmails.queue import live
from penguinmails.sandbox.smtp import free_port
from tests.ops.conftest import PYTHON, ROOT, LiveSandbox, subprocess_env, the_test_database_url

CLOSED_DB = "postgres://postgres@127.0.0.1:1/unreachable"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def get_json(client: Client, path: str, host: str = "localhost") -> tuple[int, dict[str, Any]]:
    response = client.get(path, HTTP_HOST=host)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, response.json()


def assert_report(body: dict[str, Any], status: str, checks: dict[str, str]) -> None:
    assert body["status"] == status
    assert isinstance(body["latency_ms"], float | int) and body["latency_ms"] >= 0
    assert {name: c["status"] for name, c in body["checks"].items()} == checks
    for check in body["checks"].values():
        assert check["latency_ms"] >= 0


@pytest.fixture(autouse=True)
def roomy_deadline(settings: SettingsWrapper) -> None:
    """The machine running the tests is shared and often busy: checks that are not about the
    deadline get a second. The deadline's own tests set the production default back."""
    settings.HEALTH_TIMEOUT_MS = 1000


@pytest.fixture
def fresh_beat() -> Iterator[None]:
    """Beat's heartbeat, just written (as the beat-heartbeat task does every 10 s)."""
    client = live.client()
    heartbeat.beat(client)
    yield
    client.delete(heartbeat.BEAT_KEY)


@pytest.fixture
def email_to_sandbox(sandbox_smtp: LiveSandbox, settings: SettingsWrapper) -> LiveSandbox:
    settings.EMAIL_HOST = sandbox_smtp.host
    settings.EMAIL_PORT = sandbox_smtp.port
    return sandbox_smtp


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "checks"),
    [
        ("/health", {"db": "ok", "redis": "ok"}),
        ("/health/db", {"db": "ok"}),
        ("/health/queue", {"broker": "ok", "jobs": "ok", "beat": "ok"}),
        ("/health/email", {"email": "ok"}),
    ],
)
def test_it_reports_healthy_dependencies(
    email_to_sandbox: LiveSandbox, fresh_beat: None, path: str, checks: dict[str, str]
) -> None:
    status, body = get_json(Client(), path)
    assert status == 200, body
    assert_report(body, "ok", checks)


@pytest.mark.django_db
def test_it_answers_on_tenant_and_unknown_hosts_too(email_to_sandbox: LiveSandbox) -> None:
    # Answered before tenant routing: a load balancer probing by IP or any host gets an answer.
    assert get_json(Client(), "/health/", host="acme.localhost")[0] == 200
    assert get_json(Client(), "/health", host="no-such-tenant.localhost")[0] == 200


@pytest.mark.django_db
def test_it_reports_email_down_when_smtp_is_unreachable(settings: SettingsWrapper) -> None:
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    status, body = get_json(Client(), "/health/email")
    assert status == 503
    assert_report(body, "fail", {"email": "fail"})
    assert "error" in body["checks"]["email"]


# --- Real process against unreachable PostgreSQL / Redis --------------------------------------


@contextmanager
def running_app(**env: str) -> Iterator[str]:
    # The app process talks to this run's test database, which exists, unless told otherwise.
    env.setdefault("DATABASE_URL", the_test_database_url())
    # Cold processes on a busy test machine: a roomy deadline (these tests are about outages).
    env.setdefault("HEALTH_TIMEOUT_MS", "1000")
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", "penguinmails.wsgi",
            "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "30",
        ],
        env=subprocess_env(DEBUG="false", SECURE_SSL_REDIRECT="false", **env),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/health/queue", timeout=5).close()
                break
            except urllib.error.HTTPError:
                break  # it answered (with an error status): the server is up
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"app did not start:\n{out}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def fetch(url: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_it_returns_503_when_postgresql_is_unreachable(django_db_setup: None) -> None:
    with running_app(DATABASE_URL=CLOSED_DB) as base:
        status, body = fetch(f"{base}/health")
        assert status == 503
        assert_report(body, "fail", {"db": "fail", "redis": "ok"})
        status, body = fetch(f"{base}/health/db")
        assert status == 503
        assert "error" in body["checks"]["db"]


@pytest.mark.slow
def test_it_returns_503_when_redis_is_unreachable(django_db_setup: None) -> None:
    with running_app(REDIS_URL=CLOSED_REDIS) as base:
        status, body = fetch(f"{base}/health")
        assert status == 503
        assert_report(body, "fail", {"db": "ok", "redis": "fail"})
        status, body = fetch(f"{base}/health/queue")
        assert status == 503
        assert_report(body, "fail", {"broker": "fail", "jobs": "ok", "beat": "fail"})
        assert fetch(f"{base}/health/db")[0] == 200
