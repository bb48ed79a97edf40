"""PostHog through the `posthog` package against a local capture endpoint (http.server in a
thread on loopback, POSTHOG_HOST pointing at it): the product events arrive grouped by tenant,
without a lead's or a person's data; nothing is sent without POSTHOG_API_KEY."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.entitlements import plan_for
from billing.services import dunning
from billing.services.plans import choose_plan
from campaigns.services import campaigns as svc
from deliverability.models import DomainStatus
from deliverability.services.states import transition as move_domain
from penguinmails import analytics_events
from tenants.services.accounts import sign_up
from tests.conftest import Cast
from tests.mailboxes.conftest import USER, Imap, Smtp, connect
from tests.sending.conftest import (
    Sandbox,
    make_campaign,
    make_domain,
    principal,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Capture:
    """A local stand-in for PostHog's capture API: records every event it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                capture.bodies.append(raw)
                data = json.loads(raw)
                capture.events.extend(data.get("batch") or [data])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": 1}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def posthog(settings: Any) -> Iterator[Capture]:
    server = Capture()
    settings.POSTHOG_API_KEY = "phc_local_test"
    settings.POSTHOG_HOST = server.url
    yield server
    server.stop()


def test_the_product_events_reach_the_capture_endpoint_grouped_by_tenant(
    posthog: Capture, cast: Cast, sandbox: Sandbox
) -> None:
    with connection.cursor() as cursor:  # a schema left by an earlier run
        cursor.execute('DROP SCHEMA IF EXISTS "t_phprobe" CASCADE')
    sign_up(
        workspace_name="Initech", slug="phprobe", email="Peter@Initech.example",
        password="correct horse battery staple 42", full_name="Peter Gibbons",
    )  # fmt: skip
    plan_for(cast.tenant)  # a transactional test's flush empties the ladder; this seeds it
    choose_plan(principal(cast), plan="growth")
    dunning.start(cast.tenant, subscription=None, at=timezone.now() - timedelta(hours=1))
    with schema_context(cast.tenant.schema_name):
        domain = make_domain(status=DomainStatus.PENDING)
        move_domain(domain, DomainStatus.VERIFIED, reason="records found")
        campaign = make_campaign(cast, sandbox, leads=1, steps=1, mailboxes=1)
        svc.start_campaign(principal(cast), campaign)

    signed = posthog.named("signed up")
    assert len(signed) == 1 and signed[0]["properties"]["$groups"] == {"tenant": "phprobe"}
    assert signed[0]["distinct_id"] == "tenant:phprobe"
    changed = posthog.named("plan changed")
    assert [e["properties"]["to_plan"] for e in changed] == ["growth"]
    assert changed[0]["properties"]["$groups"] == {"tenant": "acme"}
    assert len(posthog.named("payment failed")) == 1
    assert len(posthog.named("domain verified")) == 1
    started = posthog.named("campaign started")
    assert [e["properties"]["campaign_id"] for e in started] == [campaign.pk]
    assert {json.loads(body)["api_key"] for body in posthog.bodies} == {"phc_local_test"}
    # Never a person's or a lead's data: no address, no name went out.
    sent = b"".join(posthog.bodies).decode()
    for personal in ("@", "Peter", "Gibbons", "Initech.example", "lead0", "Lead0"):
        assert personal not in sent, personal


def test_personal_properties_are_dropped(posthog: Capture, cast: Cast) -> None:
    analytics_events.capture("plan chosen", cast.tenant, {"email": "x@y.test", "plan": "scale"})
    [event] = posthog.named("plan chosen")
    assert event["properties"]["plan"] == "scale" and "email" not in event["properties"]


def test_nothing_is_sent_without_a_key(cast: Cast, sandbox: Sandbox, settings: Any) -> None:
    server = Capture()
    try:
        settings.POSTHOG_API_KEY = ""
        settings.POSTHOG_HOST = server.url
        plan_for(cast.tenant)  # a transactional test's flush empties the ladder; this seeds it
        choose_plan(principal(cast), plan="growth")
        dunning.start(cast.tenant, subscription=None, at=timezone.now())
        with schema_context(cast.tenant.schema_name):
            campaign = make_campaign(cast, sandbox, leads=1, steps=1, mailboxes=1)
            svc.start_campaign(principal(cast), campaign)
        assert server.bodies == [] and analytics_events.client() is None
    finally:
        server.stop()


def test_a_connected_mailbox_is_reported_without_its_address(
    posthog: Capture, cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    plan_for(cast.tenant)
    connect(cast.tenant, cast.owner, smtp_server, imap_server)
    [event] = posthog.named("mailbox connected")
    assert event["properties"]["kind"] == "google" and event["properties"]["hosted"] is False
    assert event["properties"]["$groups"] == {"tenant": "acme"}
    assert USER not in b"".join(posthog.bodies).decode()
