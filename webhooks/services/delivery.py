"""Emitting events and delivering them (docs/webhooks.md).

- `emit(event, payload)` (or `emit_many`), in the tenant's schema: one Delivery per enabled
  endpoint subscribed to the event and one `webhooks.deliver` job each, in the caller's
  transaction (so nothing goes out for a change that rolled back). Nobody subscribed: no query.
- `attempt(delivery_id)`, run by the job: claims the delivery (a conditional UPDATE, so two
  copies of a job cannot both send), vets the URL again and connects only to the vetted address
  (DNS rebinding), POSTs the signed body, logs the attempt, then either finishes the delivery or
  schedules the next attempt per WEBHOOK_RETRY_DELAYS; a failing endpoint is disabled after
  WEBHOOK_DISABLE_AFTER_HOURS without a success (or WEBHOOK_DISABLE_AFTER_FAILURES failed
  attempts in a row) and its owners are emailed.
- `replay(principal, delivery)` and `send_test(principal, endpoint)`: by hand.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from penguinmails import netguard, states
from penguinmails.crypto import SecretUnavailable
from penguinmails.db import TenantConnection
from penguinmails.errors import Conflict
from penguinmails.http import pinned_transport
from penguinmails.queue.producer import JobSpec, enqueue, enqueue_many
from tenants.models import Membership, Tenant
from tenants.permissions import BuiltinRole
from tenants.services.access import Principal
from tenants.services.audit import record as audit
from webhooks.events import TEST_EVENT
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, EndpointStatus
from webhooks.services import subscriptions
from webhooks.services.endpoints import PORTS, _allowed, disable, schemes
from webhooks.signing import signed_headers

log = logging.getLogger("penguinmails.webhooks")

DELIVER_TASK = "webhooks.deliver"
# While an attempt is in flight its delivery is not due: a second copy of the job finds nothing.
LEASE = dt.timedelta(minutes=5)
EXCERPT = 500
PRUNE_EVERY = 200  # every this many deliveries, one prune of the schema's old ones
PRUNE_BATCH = 5000
MAX_RESPONSE_BYTES = 4096  # read no more of an answer than the log keeps (and a little more)
BREAKER_MESSAGE = "Not sent: the endpoint failed its last attempts; held until it answers again."


# --- emitting ------------------------------------------------------------------------------------
def _tenant_here() -> Tenant | None:
    schema = cast(TenantConnection, connection).schema_name
    return Tenant.objects.filter(schema_name=schema).first()


def _body(event: str, event_id: str, data: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
    envelope = {"type": event, "id": event_id, "timestamp": at.isoformat(), "data": dict(data)}
    # Dates, decimals and UUIDs as JSON strings, once, so every attempt sends the same bytes.
    return cast(dict[str, Any], json.loads(json.dumps(envelope, cls=DjangoJSONEncoder)))


def emit(event: str, payload: Mapping[str, Any]) -> list[Delivery]:
    return emit_many(event, [payload])


def emit_many(event: str, payloads: Sequence[Mapping[str, Any]]) -> list[Delivery]:
    """Queue `event` once per payload for every enabled endpoint subscribed to it."""
    if not payloads or not subscriptions.has_subscribers(event):
        return []
    endpoints = [
        e for e in Endpoint.objects.filter(status=EndpointStatus.ENABLED) if event in e.events
    ]
    tenant = _tenant_here()
    if not endpoints or tenant is None:
        return []
    now = timezone.now()
    rows = []
    for payload in payloads:
        for endpoint in endpoints:
            event_id = f"msg_{uuid.uuid4().hex}"
            rows.append(
                Delivery(endpoint=endpoint, event=event, event_id=event_id, next_attempt_at=now,
                         payload=_body(event, event_id, payload, now))
            )  # fmt: skip
    with transaction.atomic():
        created = Delivery.objects.bulk_create(rows)
        # No idempotency key on a new delivery's first job: nothing else can hold one yet, and
        # keys cost the bulk insert a conflict check and a read back (the send path's batches).
        enqueue_many(
            [JobSpec(DELIVER_TASK, {"delivery_id": d.pk}, tenant, None, now, None, None)
             for d in created]
        )  # fmt: skip
    return created


def _key(delivery: Delivery) -> str:
    return f"webhook:{delivery.pk}:{delivery.attempts}"


# --- one attempt ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What one POST got: a status code and the start of the body, or an error."""

    status_code: int | None = None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _signing_secrets(endpoint: Endpoint, now: dt.datetime) -> list[str]:
    found = [endpoint.secret.reveal()]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires is not None and expires > now:
        found.append(endpoint.previous_secret.reveal())
    return found


def _post(url: str, secrets_: list[str], delivery: Delivery) -> Outcome:
    started = time.monotonic()
    try:
        target = netguard.check_url(url, schemes=schemes(), ports=PORTS)
    except netguard.Refused as refused:
        return Outcome(error=f"Refused: {refused.message}")
    body = json.dumps(delivery.payload, separators=(",", ":"))
    headers = signed_headers(
        secrets_, event_id=delivery.event_id, timestamp=int(time.time()), body=body
    )
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    transport = pinned_transport(target, verify=_tls_context())
    try:
        with (
            httpx.Client(transport=transport, timeout=timeout, trust_env=False) as client,
            client.stream("POST", url, content=body.encode(), headers=headers) as response,
        ):
            chunk = b""
            for part in response.iter_bytes():
                chunk += part
                if len(chunk) >= MAX_RESPONSE_BYTES:
                    break
            excerpt = chunk.decode("utf-8", "replace")[:EXCERPT]
            status = response.status_code
    except httpx.HTTPError as exc:
        kind = "Timed out" if isinstance(exc, httpx.TimeoutException) else "Connection failed"
        return Outcome(error=f"{kind} ({type(exc).__name__})", duration_ms=_ms(started))
    return Outcome(status_code=status, excerpt=excerpt, duration_ms=_ms(started))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one loads the CA bundle (~50 ms), which
    was most of an attempt's cost. Certificates are still checked against the URL's host."""
    return httpx.create_ssl_context()


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _claim(delivery_id: int, now: dt.datetime) -> Delivery | None:
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(
        next_attempt_at=now + LEASE,
        attempts=F("attempts") + 1,
        round_attempts=F("round_attempts") + 1,
    )
    if not claimed:
        return None
    return Delivery.objects.select_related("endpoint").get(pk=delivery_id)


def attempt(delivery_id: int, *, now: dt.datetime | None = None) -> Attempt | None:
    """Try a due pending delivery once; None when it is not due, not pending or gone. `now`
    is the clock the schedule and the failure streak are measured on (tests move it)."""
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    if endpoint.status != EndpointStatus.ENABLED:
        states.transition(delivery, DeliveryStatus.FAILED, reason="endpoint disabled",
                          last_error="The endpoint is disabled.", completed_at=now)  # fmt: skip
        return None
    held = _breaker_open(endpoint, now)
    if held:
        outcome = Outcome(error=BREAKER_MESSAGE)
    else:
        try:
            outcome = _post(endpoint.url, _signing_secrets(endpoint, now), delivery)
        except SecretUnavailable:
            # The key that encrypted it is gone: an attempt that failed, retried and logged
            # like any other, so the owner sees why (rotate the secret or restore the key).
            outcome = Outcome(
                error="The signing secret cannot be decrypted (FIELD_ENCRYPTION_KEYS)."
            )
    with transaction.atomic():
        logged = Attempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=now,
            status_code=outcome.status_code,
            response_excerpt=outcome.excerpt,
            error=outcome.error[:300],
            duration_ms=outcome.duration_ms,
            succeeded=outcome.ok,
        )
        if outcome.ok:
            _succeeded(delivery, endpoint, outcome, now)
        else:
            _failed(delivery, endpoint, outcome, now, counted=not held)
    # Never the URL (its query string may hold the receiver's token) nor the body.
    log.info(
        "webhook attempt endpoint=%s delivery=%s attempt=%s status=%s elapsed_ms=%s%s",
        endpoint.pk, delivery.pk, delivery.attempts, outcome.status_code or "-",
        outcome.duration_ms, f" error={outcome.error[:80]!r}" if outcome.error else "",
    )  # fmt: skip
    if delivery.pk % PRUNE_EVERY == 0:
        prune(now=now)
    return logged


def prune(*, now: dt.datetime | None = None) -> int:
    """Delete this schema's finished deliveries (and their attempts) older than
    WEBHOOK_RETENTION_DAYS, at most PRUNE_BATCH at a time. Run by every PRUNE_EVERY-th attempt,
    so the log stays bounded without a periodic job visiting every tenant schema."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    old = list(
        Delivery.objects.filter(created_at__lt=cutoff)
        .exclude(status=DeliveryStatus.PENDING)
        .order_by("id")
        .values_list("pk", flat=True)[:PRUNE_BATCH]
    )
    if not old:
        return 0
    with transaction.atomic():
        Attempt.objects.filter(delivery_id__in=old).delete()
        Delivery.objects.filter(pk__in=old).delete()
    return len(old)


def _succeeded(delivery: Delivery, endpoint: Endpoint, outcome: Outcome, now: dt.datetime) -> None:
    states.transition(delivery, DeliveryStatus.SUCCEEDED, last_status_code=outcome.status_code,
                      last_error="", completed_at=now, next_attempt_at=None)  # fmt: skip
    Endpoint.objects.filter(pk=endpoint.pk).exclude(consecutive_failures=0).update(
        failing_since=None, consecutive_failures=0, last_failure_at=None
    )


def _breaker_open(endpoint: Endpoint, now: dt.datetime) -> bool:
    """Whether to hold this attempt without sending: the endpoint failed its last
    WEBHOOK_BREAKER_FAILURES attempts and the newest failure is under WEBHOOK_BREAKER_SECONDS
    old. During an outage a busy workspace's deliveries then cost no connection and no worker
    time; once a minute one goes through (half-open), and its success closes the breaker."""
    last = endpoint.last_failure_at
    return (
        endpoint.consecutive_failures >= settings.WEBHOOK_BREAKER_FAILURES
        and last is not None
        and now - last < dt.timedelta(seconds=settings.WEBHOOK_BREAKER_SECONDS)
    )


def _failed(
    delivery: Delivery, endpoint: Endpoint, outcome: Outcome, now: dt.datetime, *, counted: bool
) -> None:
    """Schedule the next attempt or give up; a `counted` failure (a real try, not one the
    breaker held) extends the endpoint's failure streak."""
    error = outcome.error or f"HTTP {outcome.status_code}"
    delays = settings.WEBHOOK_RETRY_DELAYS
    if delivery.round_attempts <= len(delays):
        run_at = now + dt.timedelta(seconds=delays[delivery.round_attempts - 1])
        Delivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=run_at, last_status_code=outcome.status_code, last_error=error[:300]
        )
        enqueue(DELIVER_TASK, {"delivery_id": delivery.pk}, tenant=_tenant_here(),
                run_at=run_at, idempotency_key=_key(delivery))  # fmt: skip
    else:
        states.transition(delivery, DeliveryStatus.FAILED, reason=error[:300],
                          last_status_code=outcome.status_code, last_error=error[:300],
                          completed_at=now, next_attempt_at=None)  # fmt: skip
    if counted:
        Endpoint.objects.filter(pk=endpoint.pk, failing_since=None).update(failing_since=now)
        Endpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now
        )
    endpoint.refresh_from_db()
    _disable_if_sustained(endpoint, now)


def _disable_if_sustained(endpoint: Endpoint, now: dt.datetime) -> None:
    if endpoint.status != EndpointStatus.ENABLED or endpoint.failing_since is None:
        return
    hours = settings.WEBHOOK_DISABLE_AFTER_HOURS
    too_long = now - endpoint.failing_since >= dt.timedelta(hours=hours)
    too_many = endpoint.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if not (too_long or too_many):
        return
    reason = (
        f"Disabled automatically: every attempt failed for {hours} hours."
        if too_long
        else f"Disabled automatically: {endpoint.consecutive_failures} attempts failed in a row."
    )
    disable(endpoint, reason=reason)
    tenant = _tenant_here()
    if tenant is not None:
        audit("webhook.auto_disabled", tenant=tenant, endpoint=endpoint.pk, reason=reason)
        _email_owners(tenant, endpoint, reason)


def _email_owners(tenant: Tenant, endpoint: Endpoint, reason: str) -> None:
    owners = sorted(
        set(
            Membership.objects.filter(
                tenant=tenant, is_active=True, role__tenant=None, role__slug=BuiltinRole.OWNER
            ).values_list("user__email", flat=True)
        )
    )
    if not owners:
        return
    subject = f"[PenguinMails] Webhook endpoint disabled ({tenant.name})"
    body = (
        f"Your webhook endpoint {endpoint.url} in {tenant.name} was disabled.\n\n{reason}\n\n"
        "Events are no longer sent to it. Fix the endpoint, enable it again on the Webhooks "
        "page, and replay the deliveries you need from its delivery log."
    )

    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, owners)
        except Exception:
            log.exception("webhook disabled notice for endpoint %s could not be sent", endpoint.pk)

    transaction.on_commit(send)


def ensure_scheduled(delivery_id: int) -> None:
    """After a job found its delivery not due (a copy of a job, or one re-queued after a worker
    died mid-attempt, whose lease still runs): make sure a job waits for the next attempt."""
    delivery = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).first()
    if delivery is None or delivery.next_attempt_at is None:
        return
    enqueue(DELIVER_TASK, {"delivery_id": delivery.pk}, tenant=_tenant_here(),
            run_at=delivery.next_attempt_at, idempotency_key=_key(delivery))  # fmt: skip


# --- by hand -------------------------------------------------------------------------------------
def replay(principal: Principal, delivery: Delivery) -> Delivery:
    """Send a finished delivery again, same body and id, with a fresh retry schedule."""
    _allowed(principal)
    if delivery.endpoint.status != EndpointStatus.ENABLED:
        raise Conflict("Enable the endpoint before replaying its deliveries.")
    now = timezone.now()
    with transaction.atomic():
        states.transition(delivery, DeliveryStatus.PENDING, reason="replayed",
                          actor=principal.user, round_attempts=0, next_attempt_at=now,
                          completed_at=None)  # fmt: skip
        enqueue(DELIVER_TASK, {"delivery_id": delivery.pk}, tenant=principal.tenant,
                idempotency_key=_key(delivery))  # fmt: skip
        audit("webhook.replayed", tenant=principal.tenant, actor=principal.user,
              delivery=delivery.pk, endpoint=delivery.endpoint_id)  # fmt: skip
    return delivery


def send_test(principal: Principal, endpoint: Endpoint) -> Delivery:
    """Queue a `webhook.test` event to this endpoint alone."""
    _allowed(principal)
    if endpoint.status != EndpointStatus.ENABLED:
        raise Conflict("Enable the endpoint before sending it a test event.")
    now = timezone.now()
    event_id = f"msg_{uuid.uuid4().hex}"
    data = {"message": "A test event from PenguinMails.", "endpoint_id": endpoint.pk}
    with transaction.atomic():
        delivery = Delivery.objects.create(
            endpoint=endpoint, event=TEST_EVENT, event_id=event_id, next_attempt_at=now,
            payload=_body(TEST_EVENT, event_id, data, now),
        )  # fmt: skip
        enqueue(DELIVER_TASK, {"delivery_id": delivery.pk}, tenant=principal.tenant,
                idempotency_key=_key(delivery))  # fmt: skip
    return delivery
