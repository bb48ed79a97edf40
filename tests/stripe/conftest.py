"""The local Stripe (penguinmails/sandbox/stripe_server.py) on a free port, its webhooks captured
by a local HTTP server exactly as signed, then posted to our `/webhooks/stripe/`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import stripe
from django.db import connection
from django.test import Client
from django.utils import timezone
from pytest_httpserver import HTTPServer

from billing.entitlements import plan_for
from billing.services.stripe_billing import sync_plans
from penguinmails.models import READY_STATUSES, Job
from penguinmails.queue import runner
from penguinmails.sandbox.stripe_server import LocalStripe
from tests.conftest import Cast

SECRET = "whsec_local_test_secret"


def sign(body: bytes, *, at: int, secret: str = SECRET) -> str:
    """Stripe's scheme (docs: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>"))."""
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


@pytest.fixture(scope="session")
def local_stripe() -> Iterator[LocalStripe]:
    server = LocalStripe().start()
    yield server
    server.stop()


@dataclass
class StripeWorld:
    server: LocalStripe
    hooks: HTTPServer
    cast: Cast
    posted: int = 0
    answers: list[Any] = field(default_factory=list)

    @property
    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient("sk_test_local", base_addresses={"api": self.server.url})

    def captured(self) -> list[tuple[bytes, str]]:
        return [
            (req.get_data(), req.headers.get("Stripe-Signature", "")) for req, _ in self.hooks.log
        ]

    def wait_for(self, event_type: str, *, count: int = 1, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            types = [json.loads(body)["type"] for body, _ in self.captured()]
            if types.count(event_type) >= count:
                time.sleep(0.3)  # the events sent together with it
                return
            time.sleep(0.1)
        raise AssertionError(f"no {event_type} webhook within {timeout}s")

    def post(self, body: bytes, signature: str) -> Any:
        return Client(HTTP_HOST="localhost").post(
            "/webhooks/stripe/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
        )

    def deliver(self) -> list[Any]:
        """Post every webhook captured since the last call, in order, then run the jobs."""
        new = self.captured()[self.posted :]
        self.posted += len(new)
        answers = [self.post(body, sig) for body, sig in new]
        for answer in answers:
            assert answer.status_code == 200, answer.content
        run_jobs()
        return answers

    def pay(self, url: str, card: str = "4242424242424242") -> httpx.Response:
        return httpx.post(url, data={"card": card}, follow_redirects=False)


def run_jobs() -> int:
    connection.set_schema_to_public()
    ran = 0
    for _ in range(100):
        job = (
            Job.objects.filter(status__in=READY_STATUSES, run_at__lte=timezone.now())
            .order_by("priority", "id")
            .first()
        )
        if job is None:
            break
        runner.run(job.pk, worker_id="test-worker")
        ran += 1
    connection.set_schema_to_public()
    return ran


@pytest.fixture
def world(
    local_stripe: LocalStripe, httpserver: HTTPServer, cast: Cast, settings: Any
) -> StripeWorld:
    httpx.delete(f"{local_stripe.url}/_config/data", headers={"Authorization": "Bearer sk_x"})
    httpserver.expect_request("/hook").respond_with_data("ok")
    local_stripe.webhook(httpserver.url_for("/hook"), SECRET)
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.STRIPE_API_BASE = local_stripe.url
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    plan_for(cast.tenant)  # a transactional test's flush empties the ladder; this seeds it again
    sync_plans()
    return StripeWorld(local_stripe, httpserver, cast)
