"""The buffer and its flusher: events reach the tenant's schema with counters and rollups
(unique firsts counted once, machines apart), unknown messages are dropped and counted, and a
flusher that cannot reach PostgreSQL leaves every event in Redis for the next one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from django_tenants.utils import schema_context

from campaigns.models import CampaignDailyStat, Message, MessageEvent
from campaigns.tracking import buffer, links
from campaigns.tracking.flush import flush
from tests.conftest import Cast
from tests.tracking.conftest import (
    CLOSED_DB,
    Sent,
    call,
    flush_in_subprocess,
    good_database_url,
    make_sent,
)

BASE = "https://track.customer.test"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Safari/605.1.15"
)


def _rollup(sent: Sent) -> dict[str, int]:
    with schema_context(sent.tenant.schema_name):
        totals = CampaignDailyStat.objects.filter(campaign_id=sent.campaign_pk).aggregate(
            opened=Sum("opened"),
            clicked=Sum("clicked"),
            machine_opened=Sum("machine_opened"),
            machine_clicked=Sum("machine_clicked"),
            unsubscribed=Sum("unsubscribed"),
        )
    return {k: v or 0 for k, v in totals.items()}


def _message(sent: Sent, pk: int | None = None) -> Message:
    with schema_context(sent.tenant.schema_name):
        return Message.objects.get(pk=pk or sent.pk)


@pytest.mark.django_db
def test_it_writes_opens_and_clicks_with_unique_firsts(sent: Sent) -> None:
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    target = "https://example.com/pricing"
    click = links.click_url(BASE, sent.tenant.pk, sent.pk, target)
    for _ in range(3):
        call("GET", pixel, headers={"User-Agent": SAFARI})
    call("GET", click, headers={"User-Agent": SAFARI})
    call("GET", pixel, headers={"User-Agent": "Mozilla/5.0"})  # Apple's prefetcher
    call("HEAD", click, headers={"User-Agent": SAFARI})
    result = flush()
    assert (result.events, result.written, result.dropped) == (6, 6, 0)
    message = _message(sent)
    assert (message.open_count, message.click_count) == (3, 1)
    assert (message.machine_open_count, message.machine_click_count) == (1, 1)
    assert message.first_opened_at is not None and message.first_clicked_at is not None
    assert _rollup(sent) == {
        "opened": 1, "clicked": 1, "machine_opened": 1, "machine_clicked": 1, "unsubscribed": 0,
    }  # fmt: skip
    with schema_context(sent.tenant.schema_name):
        events = MessageEvent.objects.filter(message_id=sent.pk)
        assert events.filter(kind="click", is_machine=False).get().url == target
        machine = dict(events.filter(is_machine=True).values_list("kind", "machine_reason"))
        assert machine == {"open": "proxy: Apple Mail Privacy Protection", "click": "HEAD request"}
        assert str(events.filter(kind="open").first().ip) == "198.51.100.7"  # type: ignore[union-attr]
    # Later batches add to the counters but not to the unique counts.
    call("GET", pixel, headers={"User-Agent": SAFARI})
    call("GET", click, headers={"User-Agent": SAFARI})
    assert flush().written == 2
    message = _message(sent)
    assert (message.open_count, message.click_count) == (4, 2)
    assert _rollup(sent)["opened"] == 1 and _rollup(sent)["clicked"] == 1
    assert buffer.depth() == {"waiting": 0, "processing": 0, "dead": 0, "dropped": 0}


@pytest.mark.django_db
def test_it_flags_scanner_clicks_right_after_delivery(cast: Cast) -> None:
    fresh = make_sent(cast.tenant, email="new@example.com", sent_ago=dt.timedelta(seconds=1))
    click = links.click_url(BASE, fresh.tenant.pk, fresh.pk, "https://example.com/")
    call("GET", click, headers={"User-Agent": SAFARI})  # a gateway with a browser's user agent
    call("GET", links.open_url(BASE, fresh.tenant.pk, fresh.pk), headers={"User-Agent": SAFARI})
    flush()
    with schema_context(fresh.tenant.schema_name):
        reasons = sorted(MessageEvent.objects.values_list("machine_reason", flat=True))
    assert reasons == ["click within 15s of sending", "open within 3s of sending"]
    message = _message(fresh)
    assert message.first_opened_at is None and message.first_clicked_at is None
    assert _rollup(fresh)["machine_clicked"] == 1 and _rollup(fresh)["clicked"] == 0


@pytest.mark.django_db
def test_it_drops_events_of_deleted_messages_and_counts_them(sent: Sent, cast: Cast) -> None:
    gone = make_sent(cast.tenant, email="gone@example.com")
    call("GET", links.open_url(BASE, gone.tenant.pk, gone.pk))
    call("GET", links.open_url(BASE, sent.tenant.pk, sent.pk))
    call("GET", links.open_url(BASE, 999_999, sent.pk))  # a tenant that no longer exists
    with schema_context(gone.tenant.schema_name):
        Message.objects.filter(pk=gone.pk).delete()
    buffer.live.client().lpush(buffer.EVENTS_KEY, b"not json")
    result = flush()
    assert (result.written, result.dropped) == (1, 3)
    assert buffer.depth()["dropped"] == 3
    assert _message(sent).open_count == 1


@pytest.mark.django_db(transaction=True)
def test_it_loses_nothing_while_postgresql_is_unreachable(cast: Cast) -> None:
    sent = make_sent(cast.tenant, email="many@example.com", n=30)
    pks = [sent.pk, *sent.others]
    for pk in pks:
        call("GET", links.open_url(BASE, sent.tenant.pk, pk), headers={"User-Agent": SAFARI})
    # The flusher runs in its own process, on a database address where nothing listens.
    down = flush_in_subprocess(CLOSED_DB)
    assert down.returncode != 0
    assert "OperationalError" in down.stderr
    assert buffer.depth() == {"waiting": 0, "processing": 30, "dead": 0, "dropped": 0}
    # More events arrive meanwhile; a second failed flush changes nothing.
    for pk in pks[:10]:
        call("GET", links.open_url(BASE, sent.tenant.pk, pk), headers={"User-Agent": SAFARI})
    assert flush_in_subprocess(CLOSED_DB).returncode != 0
    assert buffer.depth()["processing"] == 30 and buffer.depth()["waiting"] == 10
    # PostgreSQL is back: the stuck batch first, then the rest, each exactly once.
    up = flush_in_subprocess(good_database_url())
    assert up.returncode == 0, up.stderr
    assert "written 40 dropped 0" in up.stdout
    assert buffer.depth() == {"waiting": 0, "processing": 0, "dead": 0, "dropped": 0}
    with schema_context(sent.tenant.schema_name):
        assert MessageEvent.objects.filter(kind="open").count() == 40
        counts = sorted(Message.objects.filter(pk__in=pks).values_list("open_count", flat=True))
    assert counts == [1] * 20 + [2] * 10
    assert _rollup(sent)["opened"] == 30


@pytest.mark.django_db
def test_it_lets_only_one_flusher_work_at_a_time(sent: Sent) -> None:
    call("GET", links.open_url(BASE, sent.tenant.pk, sent.pk))
    buffer.live.client().set(buffer.LOCK_KEY, "someone else", px=10_000)
    assert flush().locked
    assert buffer.depth()["waiting"] == 1
    buffer.live.client().delete(buffer.LOCK_KEY)
    assert flush().written == 1


@pytest.mark.django_db
def test_it_applies_a_buffered_unsubscribe(sent: Sent) -> None:
    # What the unsubscribe endpoint buffers when PostgreSQL is down (see test_live).
    buffer.push(buffer.Event(buffer.UNSUBSCRIBE, sent.tenant.pk, sent.pk, buffer.now()))
    buffer.push(buffer.Event(buffer.UNSUBSCRIBE, sent.tenant.pk, sent.pk, buffer.now()))
    flush()
    assert _message(sent).unsubscribed_at is not None
    assert _rollup(sent)["unsubscribed"] == 1
