"""The endpoints' LPUSH (campaigns.tracking.buffer.push, its own socket path): every answered
hit is buffered exactly once (its reply read later, not waited for) across a connection Redis
closed, and an unreachable Redis costs the event only, never the answer."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest
import redis
from django.test import override_settings

from campaigns.tracking import buffer, links
from campaigns.tracking.app import GIF
from penguinmails.queue import live
from tests.tracking.conftest import Sent, call

pytestmark = pytest.mark.django_db
BASE = "https://track.customer.test"


def _buffered() -> list[buffer.Event | None]:
    buffer.settle()  # the replies to this process's pushes: they are not waited for
    return [buffer.Event.decode(raw) for raw in live.client().lrange(buffer.EVENTS_KEY, 0, -1)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def _own_client_id() -> int:
    """CLIENT ID asked on the endpoint's own socket (its replies all read: `settle`)."""
    sock = buffer._pusher.sock
    sock.setblocking(True)
    try:
        sock.sendall(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")
        reply = sock.recv(100)
    finally:
        sock.setblocking(False)
    assert reply.startswith(b":"), reply
    return int(reply[1:].strip())


def test_it_buffers_each_hit_once_with_what_the_endpoint_saw(sent: Sent) -> None:
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    target = "https://example.com/a?b=1"
    click = links.click_url(BASE, sent.tenant.pk, sent.pk, target)
    assert call("GET", pixel, remote_addr="203.0.113.9").status == 200
    assert call("HEAD", click).status == 302
    newest, oldest = _buffered()
    assert oldest is not None and newest is not None
    assert (oldest.kind, oldest.tenant_id, oldest.message_pk) == ("o", sent.tenant.pk, sent.pk)
    assert (oldest.ip, oldest.head, oldest.url) == ("203.0.113.9", False, "")
    assert oldest.user_agent.startswith("Mozilla/5.0")
    assert (newest.kind, newest.url, newest.head) == ("c", target, True)


def test_it_sends_again_on_a_connection_redis_closed(sent: Sent) -> None:
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    assert call("GET", pixel).status == 200
    buffer.settle()
    conn = buffer._pusher.conn
    # Only the endpoint's own connection (the Redis server is shared with other suites).
    assert live.client().client_kill_filter(_id=_own_client_id()) == 1
    assert call("GET", pixel).status == 200
    assert call("GET", pixel).status == 200
    assert buffer.depth()["waiting"] == 3  # none lost, none twice
    assert buffer._pusher.conn is not conn


def test_it_keeps_every_hit_past_the_replies_it_has_not_read(sent: Sent) -> None:
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    hits = 3 * buffer._Pusher.WINDOW + 5
    for _ in range(hits):
        assert call("GET", pixel).status == 200
    assert len(buffer._pusher.unacked) < buffer._Pusher.WINDOW
    assert buffer.depth()["waiting"] == hits
    assert not buffer._pusher.unacked


def test_an_unreachable_redis_costs_the_event_not_the_answer(sent: Sent) -> None:
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    click = links.click_url(BASE, sent.tenant.pk, sent.pk, "https://example.com/")
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        response = call("GET", pixel)
        assert (response.status, response.body) == (200, GIF)
        assert call("GET", click).headers["Location"] == "https://example.com/"
    assert buffer.depth()["waiting"] == 0
    # Redis back: the next hit is buffered on a new connection.
    assert call("GET", pixel).status == 200
    assert buffer.depth()["waiting"] == 1


def test_it_checks_the_replies_it_reads_later(sent: Sent, caplog: pytest.LogCaptureFixture) -> None:
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    live.client().set(buffer.EVENTS_KEY, "not a list")  # every LPUSH now gets a WRONGTYPE error
    for _ in range(buffer._Pusher.READ_AT + 1):
        assert call("GET", pixel).status == 200  # the answer never waits for Redis's reply
    with contextlib.suppress(redis.ResponseError):
        buffer.settle()
    assert "refused by Redis: b'-WRONGTYPE" in caplog.text
    assert not buffer._pusher.unacked
    live.client().delete(buffer.EVENTS_KEY)
    assert call("GET", pixel).status == 200  # the same connection goes on
    assert buffer.depth()["waiting"] == 1


def test_a_forked_child_pushes_on_a_connection_of_its_own(sent: Sent) -> None:
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    assert call("GET", pixel).status == 200
    parent = buffer._pusher.sock
    assert parent is not None
    pid = os.fork()
    if pid == 0:  # the child (a gunicorn worker forked from a master that pushed): Redis only
        code = 1
        try:
            if buffer._pusher.sock is None and call("GET", pixel).status == 200:
                buffer.settle()
                code = 0 if buffer._pusher.sock not in (None, parent) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert call("GET", pixel).status == 200  # the parent's connection is untouched
    assert buffer._pusher.sock is parent
    assert buffer.depth()["waiting"] == 3


def test_it_reads_the_replies_once_many_are_unanswered(sent: Sent) -> None:
    # One `recv` for READ_AT pushes, not one per push: below it, nothing is read.
    pixel = links.open_url(BASE, sent.tenant.pk, sent.pk)
    for _ in range(buffer._Pusher.READ_AT - 1):
        assert call("GET", pixel).status == 200
    assert len(buffer._pusher.unacked) == buffer._Pusher.READ_AT - 1
    assert buffer.depth()["waiting"] == buffer._Pusher.READ_AT - 1
    assert not buffer._pusher.unacked
