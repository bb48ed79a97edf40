"""Health that tells the truth: /health/queue fails with the broker stopped, with stalled workers
and with a stale beat; /health/email probes every active mail server; a probe that does not
answer fails the endpoint instead of hanging it.

Probes run on their own connections (penguinmails.health), so the tests that need rows a probe
reads commit them (transaction=True).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from infrastructure.models import MailServer, MailServerKind, MailServerStatus
from penguinmails import heartbeat
from penguinmails.models import JobStatus
from penguinmails.queue import live, runner
from penguinmails.queue.producer import enqueue
from penguinmails.sandbox.smtp import free_port
from penguinmails.tasks import beat_heartbeat
from tests.ops.conftest import LiveSandbox, the_test_database_url
from tests.queue.conftest import _redis_server_binary


def get(path: str) -> tuple[int, dict[str, Any]]:
    response = Client().get(path)
    return response.status_code, response.json()


def statuses(body: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in body["checks"].items()}


@pytest.fixture(autouse=True)
def roomy_deadline(settings: SettingsWrapper) -> None:
    """The machine running the tests is shared and often busy: checks that are not about the
    deadline get a second. The deadline's own tests set the production default back."""
    settings.HEALTH_TIMEOUT_MS = 1000


@pytest.fixture
def fresh_beat() -> Iterator[None]:
    client = live.client()
    heartbeat.beat(client)
    yield
    client.delete(heartbeat.BEAT_KEY)


@pytest.fixture
def own_redis(tmp_path: Any, settings: SettingsWrapper) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of this test's own on a free port (never the shared one), as REDIS_URL."""
    port = free_port()
    proc = subprocess.Popen(
        [_redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    settings.REDIS_URL = url
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


# --- the broker --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_it_fails_the_queue_when_the_broker_stops(own_redis: subprocess.Popen[bytes]) -> None:
    heartbeat.beat(live.client())
    status, body = get("/health/queue")
    assert (status, statuses(body)) == (200, {"broker": "ok", "jobs": "ok", "beat": "ok"})

    own_redis.kill()
    own_redis.wait(10)
    status, body = get("/health/queue")
    assert status == 503
    assert statuses(body) == {"broker": "fail", "jobs": "ok", "beat": "fail"}
    assert "error" in body["checks"]["broker"]


# --- beat --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_it_fails_the_queue_when_beats_heartbeat_is_stale_or_missing(
    settings: SettingsWrapper,
) -> None:
    settings.HEALTH_BEAT_STALE_SECONDS = 60
    client = live.client()
    try:
        client.delete(heartbeat.BEAT_KEY)
        status, body = get("/health/queue")
        assert status == 503 and statuses(body)["beat"] == "fail"
        assert "never" in body["checks"]["beat"]["error"]

        heartbeat.beat(client, at=time.time() - 90)
        status, body = get("/health/queue")
        assert status == 503 and statuses(body)["beat"] == "fail"
        assert body["checks"]["beat"]["heartbeat_age_s"] >= 90

        heartbeat.beat(client)
        status, body = get("/health/queue")
        assert status == 200 and statuses(body)["beat"] == "ok"
    finally:
        client.delete(heartbeat.BEAT_KEY)


def test_the_beat_heartbeat_task_writes_it() -> None:
    client = live.client()
    client.delete(heartbeat.BEAT_KEY)
    try:
        written = beat_heartbeat()
        assert heartbeat.last_beat(client) == pytest.approx(written)
    finally:
        client.delete(heartbeat.BEAT_KEY)


# --- stalled workers ---------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_it_fails_the_queue_when_due_jobs_wait_and_nothing_runs(
    fresh_beat: None, settings: SettingsWrapper
) -> None:
    settings.HEALTH_QUEUE_STALL_SECONDS = 60
    # Due for five minutes; no job running, none finished: no worker is taking them.
    waiting = enqueue("platform.noop", run_at=timezone.now() - dt.timedelta(minutes=5))
    status, body = get("/health/queue")
    assert status == 503
    assert statuses(body) == {"broker": "ok", "jobs": "fail", "beat": "ok"}
    assert "stalled" in body["checks"]["jobs"]["error"]
    assert body["checks"]["jobs"]["oldest_waiting_age_s"] >= 300

    # A worker finishes a job: the queue is moving, the old one just waits its turn.
    other = enqueue("platform.noop")  # not urgent: nothing is published to the broker
    assert runner.run(other.pk, worker_id="health-test:1") == runner.Outcome.COMPLETED
    status, body = get("/health/queue")
    assert status == 200, body
    assert body["checks"]["jobs"]["last_finished_age_s"] < 60
    waiting.refresh_from_db()
    assert waiting.status == JobStatus.QUEUED


# --- probes that do not answer -----------------------------------------------------------------
@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung mail server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.mark.django_db
def test_it_fails_instead_of_hanging_on_a_mail_server_that_never_answers(
    silent_smtp: int, settings: SettingsWrapper
) -> None:
    settings.HEALTH_TIMEOUT_MS = 80
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", silent_smtp
    started = time.monotonic()
    status, body = get("/health/email")
    # Not a speed test: without its deadline this request would wait for ever.
    assert time.monotonic() - started < 5
    assert status == 503
    assert statuses(body)["email"] == "fail"


@pytest.mark.django_db
def test_it_fails_the_jobs_probe_when_its_table_is_locked(
    fresh_beat: None, settings: SettingsWrapper
) -> None:
    with psycopg.connect(the_test_database_url(), autocommit=False) as locker:
        locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        settings.HEALTH_TIMEOUT_MS = 80
        started = time.monotonic()
        status, body = get("/health/queue")
        assert time.monotonic() - started < 5  # the statement timeout or the deadline, not the lock
        assert status == 503
        assert statuses(body)["jobs"] == "fail"
        # The database itself still answers.
        settings.HEALTH_TIMEOUT_MS = 1000
        assert get("/health/db")[0] == 200
        locker.rollback()


# --- mail servers ------------------------------------------------------------------------------
def mail_server(hostname: str, port: int, status: str) -> MailServer:
    return MailServer.objects.create(
        shared=True, kind=MailServerKind.SANDBOX, hostname=hostname, smtp_host="127.0.0.1",
        smtp_port=port, status=status,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_it_checks_each_active_mail_server(
    sandbox_smtp: LiveSandbox, settings: SettingsWrapper
) -> None:
    settings.EMAIL_HOST, settings.EMAIL_PORT = sandbox_smtp.host, sandbox_smtp.port
    mail_server("mx1.example.test", sandbox_smtp.port, MailServerStatus.ACTIVE)
    status, body = get("/health/email")
    assert status == 200, body
    # The same host and port as EMAIL_HOST: probed once.
    assert statuses(body) == {"email": "ok"}

    dead = free_port()
    mx2 = mail_server("mx2.example.test", dead, MailServerStatus.ACTIVE)
    mail_server("mx3.example.test", free_port(), MailServerStatus.RETIRED)  # not probed
    status, body = get("/health/email")
    assert status == 503
    # Named by id, never by hostname: the answer is public.
    assert statuses(body) == {"email": "ok", f"mail:{mx2.pk}": "fail"}
    assert body["checks"][f"mail:{mx2.pk}"]["error"]
    assert "example.test" not in json.dumps(body)


@pytest.mark.django_db
def test_it_still_probes_the_mail_host_when_the_mail_servers_cannot_be_listed(
    sandbox_smtp: LiveSandbox, settings: SettingsWrapper
) -> None:
    settings.HEALTH_TIMEOUT_MS = 200
    settings.EMAIL_HOST, settings.EMAIL_PORT = sandbox_smtp.host, sandbox_smtp.port
    with psycopg.connect(the_test_database_url(), autocommit=False) as locker:
        locker.execute(f"LOCK TABLE {MailServer._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        status, body = get("/health/email")
        locker.rollback()
    assert status == 503
    assert statuses(body) == {"email": "ok", "mail_servers": "fail"}
