"""Fixtures for outgoing webhooks: a real HTTP server on loopback (http.server in a thread) that
records every POST and answers from a script, and helpers that run the delivery jobs through the
queue runner as a worker does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from tenants.models import Membership, Tenant, User
from tenants.services.access import Principal, principal_for_membership
from webhooks.services import endpoints, subscriptions
from webhooks.services.delivery import DELIVER_TASK

READY = [JobStatus.QUEUED, JobStatus.ENQUEUED, JobStatus.RETRYING]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the server got, and the statuses it answers with in turn (the last one repeats)."""

    port: int
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=lambda: [200])
    reply: bytes = b'{"ok": true}'
    # When set, each request waits for it before answering (a slow endpoint).
    hold: threading.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/penguin"

    def next_status(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.NETGUARD_ALLOW_LOOPBACK = True  # the development allowance: the server is local
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.received.append(Received(self.path, headers, body))
            if state.hold is not None:
                state.hold.wait(30)
            status = state.next_status()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.reply)))
            self.end_headers()
            self.wfile.write(state.reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fresh_subscriptions() -> Iterator[None]:
    """The per-process cache outlives a test's rollback: start and end each test without it."""
    subscriptions._cache.clear()
    yield
    subscriptions._cache.clear()


def principal(tenant: Tenant, user: User) -> Principal:
    return principal_for_membership(Membership.objects.get(tenant=tenant, user=user))


def make_endpoint(
    tenant: Tenant, user: User, url: str, events: list[str] | None = None
) -> endpoints.Created:
    who = principal(tenant, user)
    with schema_context(tenant.schema_name):
        return endpoints.create_endpoint(who, url=url, events=events or ["message.sent"])


def run_deliveries() -> int:
    """Run every due delivery job with the worker's runner; returns how many ran."""
    connection.set_schema_to_public()
    ran = 0
    for _ in range(50):
        job = (
            Job.objects.filter(task=DELIVER_TASK, status__in=READY, run_at__lte=timezone.now())
            .order_by("id")
            .first()
        )
        if job is None:
            break
        runner.run(job.pk, worker_id="test")
        ran += 1
    connection.set_schema_to_public()
    return ran
