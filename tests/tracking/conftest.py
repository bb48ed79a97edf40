"""Tracking fixtures: a sent message in acme (built with the ORM: the sender is not needed), an
empty tracking buffer in this run's Redis database, WSGI calls straight into the app, and a
real gunicorn serving penguinmails.wsgi."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import (
    Campaign,
    CampaignLead,
    EmailTemplate,
    Lead,
    Message,
    MessageStatus,
    SequenceStep,
    StepVariant,
)
from campaigns.tracking import buffer
from penguinmails.queue import live
from penguinmails.sandbox.smtp import free_port
from penguinmails.wsgi import application
from tenants.models import Tenant
from tests.conftest import Cast
from tests.ops.conftest import PYTHON, ROOT, subprocess_env, the_test_database_url

CLOSED_DB = "postgres://postgres@127.0.0.1:1/unreachable"


@dataclass
class Sent:
    """A sent message of acme's campaign 'Spring' to ada@example.com, an hour ago."""

    tenant: Tenant
    pk: int
    lead_pk: int
    campaign_pk: int
    step_pk: int
    variant_pk: int
    others: list[int] = field(default_factory=list)  # more messages of the same campaign


def make_sent(tenant: Tenant, *, email: str = "ada@example.com", n: int = 1,
              sent_ago: dt.timedelta = dt.timedelta(hours=1)) -> Sent:  # fmt: skip
    with schema_context(tenant.schema_name):
        template = EmailTemplate.objects.create(name=f"Intro {email}", subject="Hi",
                                                html_body="<p>Hi</p>")  # fmt: skip
        campaign = Campaign.objects.create(name=f"Spring {email}", status="running")
        step = SequenceStep.objects.create(campaign=campaign, order=1)
        variant = StepVariant.objects.create(step=step, template=template)
        pks = []
        lead_pk = 0
        for i in range(n):
            address = email if i == 0 else f"{i}.{email}"
            lead = Lead.objects.create(email=address)
            lead_pk = lead_pk or lead.pk
            CampaignLead.objects.create(campaign=campaign, lead=lead, next_step=2)
            sent_at = timezone.now() - sent_ago
            message = Message.objects.create(
                campaign=campaign, step=step, variant=variant, lead=lead, to_email=address,
                status=MessageStatus.SENT, scheduled_for=sent_at, sent_at=sent_at,
                message_id=f"<{address}.{time.time_ns()}@acme.test>",
            )  # fmt: skip
            pks.append(message.pk)
    return Sent(tenant, pks[0], lead_pk, campaign.pk, step.pk, variant.pk, pks[1:])


@pytest.fixture
def sent(cast: Cast) -> Sent:
    return make_sent(cast.tenant)


@pytest.fixture(autouse=True)
def empty_buffer() -> Iterator[None]:
    """This run's Redis database is ours: start and end every test with no tracking keys."""

    def clear() -> None:
        client = live.client()
        keys = [buffer.EVENTS_KEY, buffer.PROCESSING_KEY, buffer.ATTEMPTS_KEY, buffer.DEAD_KEY,
                buffer.DROPPED_KEY, buffer.LOCK_KEY]  # fmt: skip
        client.delete(*keys)

    clear()
    yield
    clear()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def call(method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
         remote_addr: str = "198.51.100.7") -> Response:  # fmt: skip
    """One request through penguinmails.wsgi.application, as a WSGI server would make it."""
    parts = urlsplit(url)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": parts.path,
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname or "track.customer.test",
        "SERVER_PORT": "443",
        "HTTP_HOST": parts.hostname or "track.customer.test",
        "REMOTE_ADDR": remote_addr,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_USER_AGENT": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Safari/605.1.15",
    }
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE",) else f"HTTP_{key}"] = value
    captured: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = dict(response_headers)

    chunks = application(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Response(captured["status"], captured["headers"], data)


def path_of(url: str) -> str:
    return urlsplit(url).path


@contextmanager
def gunicorn(**env: str) -> Iterator[str]:
    """penguinmails.wsgi under a real gunicorn on a free port, on this run's test database
    unless told otherwise; yields its base URL."""
    env.setdefault("DATABASE_URL", the_test_database_url())
    # The Redis this process reads (another suite's fixture may have pointed it elsewhere).
    env.setdefault("REDIS_URL", settings.REDIS_URL)
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "penguinmails.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--timeout", "30"],
        env=subprocess_env(DEBUG="false", SECURE_SSL_REDIRECT="false", **env),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/t/", timeout=5).close()
            except urllib.error.HTTPError:
                break  # it answered
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"gunicorn did not start:\n{out}") from None
                time.sleep(0.2)
            else:
                break
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def flush_in_subprocess(database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the flusher in its own process against `database_url` (same Redis as this run)."""
    code = (
        "import django; django.setup()\n"
        "from campaigns.tracking.flush import flush\n"
        "r = flush()\n"
        "print('written', r.written, 'dropped', r.dropped)\n"
    )
    env = subprocess_env(DATABASE_URL=database_url, REDIS_URL=settings.REDIS_URL)
    return subprocess.run(
        [PYTHON, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def good_database_url() -> str:
    """This run's test database, for child processes."""
    return the_test_database_url()
