"""Delivery of outgoing webhooks to a real HTTP server: signed so that a consumer verifies it,
retried on 500 until it succeeds, given up and the endpoint disabled after 24 hours of failure
(with an email to the owners), replayed by hand; nothing queued when nobody subscribed."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import threading
import time
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks import Webhook

from tests.conftest import Cast
from tests.webhooks.conftest import Receiver, make_endpoint, principal, run_deliveries
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, EndpointStatus
from webhooks.services import delivery as delivery_svc
from webhooks.services import subscriptions

pytestmark = pytest.mark.django_db(transaction=True)

DELAYS = [5, 300, 1800, 7200, 18000, 36000, 23100]


def emit_sent(cast: Cast, **data: Any) -> list[Delivery]:
    with schema_context(cast.tenant.schema_name):
        return delivery_svc.emit(
            "message.sent", {"message_id": 7, "to": "lead@example.com", **data}
        )


def test_it_delivers_an_event_whose_signature_a_consumer_verifies(
    cast: Cast, receiver: Receiver
) -> None:
    created = make_endpoint(cast.tenant, cast.owner, receiver.url)
    assert created.secret.startswith("whsec_")
    [queued] = emit_sent(cast, campaign_id=3)

    assert run_deliveries() == 1

    [got] = receiver.received
    assert got.path == "/hooks/penguin"
    # A consumer with the Standard Webhooks library accepts it ...
    event = Webhook(created.secret).verify(got.body, got.headers)
    assert event["type"] == "message.sent"
    assert event["data"] == {"message_id": 7, "to": "lead@example.com", "campaign_id": 3}
    assert got.headers["webhook-id"] == queued.event_id == event["id"]
    # ... and so does one written by hand from the spec: HMAC-SHA256 of "id.timestamp.body".
    key = base64.b64decode(created.secret.removeprefix("whsec_"))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert got.headers["webhook-signature"] == f"v1,{expected}"
    # A tampered body or another secret is refused.
    with pytest.raises(Exception, match="signature"):
        Webhook(created.secret).verify(got.body.replace(b"lead@", b"evil@"), got.headers)
    with schema_context(cast.tenant.schema_name):
        delivery = Delivery.objects.get(pk=queued.pk)
        assert delivery.status == DeliveryStatus.SUCCEEDED
        [attempt] = Attempt.objects.filter(delivery=delivery)
        assert (attempt.status_code, attempt.succeeded) == (200, True)
        assert attempt.response_excerpt == '{"ok": true}'
        # The secret is stored encrypted, never in clear.
        with connection.cursor() as cursor:
            cursor.execute("SELECT secret FROM webhooks_endpoint")
            [(stored,)] = cursor.fetchall()
    assert stored.startswith("gAAAA") and created.secret.removeprefix("whsec_") not in stored


def test_it_retries_after_a_500_until_the_endpoint_answers(
    cast: Cast, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_DELAYS = [0, 0, 0]  # the next attempt is due at once
    receiver.statuses = [500, 503, 200]
    make_endpoint(cast.tenant, cast.owner, receiver.url)
    [queued] = emit_sent(cast)

    assert run_deliveries() == 3

    assert len(receiver.received) == 3
    # Every attempt carries the same id, so the consumer can drop a duplicate.
    assert {r.headers["webhook-id"] for r in receiver.received} == {queued.event_id}
    with schema_context(cast.tenant.schema_name):
        delivery = Delivery.objects.get(pk=queued.pk)
        codes = list(
            Attempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)
        )
        endpoint = Endpoint.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert (delivery.attempts, codes) == (3, [500, 503, 200])
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)


def test_it_retries_over_24_hours_then_disables_the_endpoint_and_emails_the_owners(
    cast: Cast, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    make_endpoint(cast.tenant, cast.owner, receiver.url)
    [queued] = emit_sent(cast)
    start = timezone.now()
    clock = start
    with schema_context(cast.tenant.schema_name):
        for delay in [*DELAYS, None]:
            assert delivery_svc.attempt(queued.pk, now=clock) is not None
            delivery = Delivery.objects.get(pk=queued.pk)
            if delay is None:
                break
            assert delivery.status == DeliveryStatus.PENDING
            assert delivery.next_attempt_at == clock + dt.timedelta(seconds=delay)
            # Not due a second earlier: the schedule holds.
            assert (
                delivery_svc.attempt(
                    queued.pk, now=delivery.next_attempt_at - dt.timedelta(seconds=1)
                )
                is None
            )
            clock = delivery.next_attempt_at
        endpoint = Endpoint.objects.get()
        later = delivery_svc.emit("message.sent", {"message_id": 8})
    assert clock - start >= dt.timedelta(hours=24)
    assert len(receiver.received) == len(DELAYS) + 1
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == 500
    assert endpoint.status == EndpointStatus.DISABLED
    assert "24 hours" in endpoint.disabled_reason
    assert later == []  # a disabled endpoint gets nothing new
    [notice] = [m for m in mail.outbox if "Webhook endpoint disabled" in m.subject]
    assert notice.to == [cast.owner.email]
    assert receiver.url in notice.body


def test_it_disables_after_consecutive_failed_attempts(
    cast: Cast, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_RETRY_DELAYS = [0, 0, 0, 0, 0]
    receiver.statuses = [404]
    make_endpoint(cast.tenant, cast.owner, receiver.url)
    emit_sent(cast)
    emit_sent(cast)

    run_deliveries()

    assert len(receiver.received) == 3
    with schema_context(cast.tenant.schema_name):
        assert Endpoint.objects.get().status == EndpointStatus.DISABLED
        statuses = set(Delivery.objects.values_list("status", flat=True))
    assert statuses == {DeliveryStatus.FAILED}


def test_a_replay_sends_the_same_event_again(cast: Cast, receiver: Receiver) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    [queued] = emit_sent(cast)
    run_deliveries()
    with schema_context(cast.tenant.schema_name):
        delivery = Delivery.objects.select_related("endpoint").get(pk=queued.pk)
        delivery_svc.replay(principal(cast.tenant, cast.admin), delivery)
        assert Delivery.objects.get(pk=queued.pk).status == DeliveryStatus.PENDING

    assert run_deliveries() == 1

    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == queued.event_id
    Webhook(made.secret).verify(second.body, second.headers)
    with schema_context(cast.tenant.schema_name):
        delivery = Delivery.objects.get(pk=queued.pk)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)


def test_nothing_is_queued_and_no_query_runs_when_nobody_subscribed(
    cast: Cast, receiver: Receiver, django_assert_num_queries: Any
) -> None:
    make_endpoint(cast.tenant, cast.owner, receiver.url, events=["message.opened"])
    with schema_context(cast.tenant.schema_name):
        assert delivery_svc.emit("message.sent", {"message_id": 1}) == []  # fills the cache
        with django_assert_num_queries(0):
            for n in range(100):
                assert delivery_svc.emit("message.sent", {"message_id": n}) == []
        assert Delivery.objects.count() == 0
        assert len(delivery_svc.emit("message.opened", {"message_id": 1})) == 1


def test_the_log_forgets_finished_deliveries_after_the_retention(
    cast: Cast, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_RETENTION_DAYS = 30
    make_endpoint(cast.tenant, cast.owner, receiver.url)
    emit_sent(cast)
    emit_sent(cast)
    run_deliveries()
    [waiting] = emit_sent(cast)  # still pending: kept whatever its age
    later = timezone.now() + dt.timedelta(days=31)
    with schema_context(cast.tenant.schema_name):
        assert delivery_svc.prune(now=timezone.now()) == 0  # nothing old yet
        assert delivery_svc.prune(now=later) == 2
        assert list(Delivery.objects.values_list("pk", flat=True)) == [waiting.pk]
        assert Attempt.objects.count() == 0


def test_two_copies_of_a_delivery_job_send_once(cast: Cast, receiver: Receiver) -> None:
    """While one attempt waits for a slow endpoint, a second copy of its job (a duplicate
    message, a reaped job) finds the delivery claimed and sends nothing."""
    receiver.hold = threading.Event()
    make_endpoint(cast.tenant, cast.owner, receiver.url)
    [queued] = emit_sent(cast)

    def first_copy() -> None:
        with schema_context(cast.tenant.schema_name):
            delivery_svc.attempt(queued.pk)
        connection.close()

    worker = threading.Thread(target=first_copy)
    worker.start()
    for _ in range(500):
        if receiver.received:
            break
        time.sleep(0.01)
    with schema_context(cast.tenant.schema_name):
        assert delivery_svc.attempt(queued.pk) is None  # claimed: nothing sent
    receiver.hold.set()
    worker.join(30)
    assert len(receiver.received) == 1
    with schema_context(cast.tenant.schema_name):
        delivery = Delivery.objects.get(pk=queued.pk)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 1)


def test_a_process_sees_another_ones_new_endpoint_by_the_version_in_redis(
    cast: Cast, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_SUBSCRIPTIONS_CHECK_SECONDS = 0  # compare with Redis at every call
    settings.WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS = 3600  # the copy's age alone would not do
    with schema_context(cast.tenant.schema_name):
        assert not subscriptions.has_subscribers("message.sent")
        stale = dict(subscriptions._cache)  # this process's copy before another one writes
    make_endpoint(cast.tenant, cast.owner, receiver.url)  # "another process": bumps the version
    subscriptions._cache.update(stale)  # ... which this process did not see
    with schema_context(cast.tenant.schema_name):
        assert subscriptions.has_subscribers("message.sent")
        assert len(delivery_svc.emit("message.sent", {"message_id": 1})) == 1


def test_the_breaker_holds_attempts_to_a_failing_endpoint_but_one_a_minute(
    cast: Cast, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_BREAKER_FAILURES = 2
    settings.WEBHOOK_BREAKER_SECONDS = 60
    receiver.statuses = [500, 500, 200]
    make_endpoint(cast.tenant, cast.owner, receiver.url)
    queued = [emit_sent(cast, n=n)[0] for n in range(4)]
    start = timezone.now()
    with schema_context(cast.tenant.schema_name):
        for delivery in queued:
            delivery_svc.attempt(delivery.pk, now=start)
        # Two real failures, then the breaker holds the other two: nothing sent, logged, retried.
        assert len(receiver.received) == 2
        held = Attempt.objects.filter(delivery_id__in=[d.pk for d in queued[2:]])
        assert {a.error for a in held} == {delivery_svc.BREAKER_MESSAGE}
        assert Endpoint.objects.get().consecutive_failures == 2  # held ones do not count
        # A minute later one goes through (half-open); its success closes the breaker.
        later = start + dt.timedelta(seconds=61)
        assert delivery_svc.attempt(queued[2].pk, now=later).succeeded  # type: ignore[union-attr]
        assert delivery_svc.attempt(queued[3].pk, now=later).succeeded  # type: ignore[union-attr]
        endpoint = Endpoint.objects.get()
    assert len(receiver.received) == 4
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)


def test_emitting_in_the_public_schema_sends_nothing_and_does_not_fail(cast: Cast) -> None:
    connection.set_schema_to_public()
    assert delivery_svc.emit("message.sent", {"message_id": 1}) == []
