"""The HTTP layer every outside-service client uses (penguinmails/http.py), against a local
HTTP server: retries, backoff, Retry-After, idempotency, timeouts, redaction, logging."""

from __future__ import annotations

import json
import logging
import socket
import time
from email.utils import formatdate

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from penguinmails.http import HttpClient, RetryPolicy, TransportFailure, pinned_transport
from penguinmails.netguard import Target

TOKEN = "tok-very-secret-123"
API_KEY = "hw-api-key-456"


def make_client(
    server: HTTPServer, sleeps: list[float], *, attempts: int = 3, **options: object
) -> HttpClient:
    return HttpClient(
        "svc",
        base_url=server.url_for("/"),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=2.0,
        retry=RetryPolicy(attempts=attempts, backoff=0.1, max_backoff=0.4, max_retry_after=5),
        idempotency_header="Idempotency-Key",
        secret_fields=("API", "api_key"),
        sleep=sleeps.append,
        **options,  # type: ignore[arg-type]
    )


def test_it_retries_a_503_then_returns_the_success(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/things").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/things").respond_with_json({"ok": True})
    sleeps: list[float] = []
    response = make_client(httpserver, sleeps).request("GET", "/things")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert len(httpserver.log) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1


@pytest.mark.parametrize("status", [429, 503])
def test_it_waits_out_retry_after_in_seconds(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_ordered_request("/x").respond_with_data(
        "slow down", status=status, headers={"Retry-After": "3"}
    )
    httpserver.expect_ordered_request("/x").respond_with_data("ok")
    sleeps: list[float] = []
    assert make_client(httpserver, sleeps).request("GET", "/x").status_code == 200
    assert sleeps == [3.0]  # the server's wait, not the (shorter) backoff


def test_it_waits_out_retry_after_as_an_http_date(httpserver: HTTPServer) -> None:
    later = formatdate(time.time() + 2, usegmt=True)
    httpserver.expect_ordered_request("/x").respond_with_data(
        "", status=429, headers={"Retry-After": later}
    )
    httpserver.expect_ordered_request("/x").respond_with_data("ok")
    sleeps: list[float] = []
    assert make_client(httpserver, sleeps).request("GET", "/x").status_code == 200
    assert len(sleeps) == 1 and 0.5 < sleeps[0] <= 2.0


def test_it_hands_back_a_retry_after_longer_than_it_will_wait(httpserver: HTTPServer) -> None:
    # A worker does not sleep for ten minutes: the caller's job is retried later instead.
    httpserver.expect_request("/x").respond_with_data(
        "", status=429, headers={"Retry-After": "600"}
    )
    sleeps: list[float] = []
    assert make_client(httpserver, sleeps).request("GET", "/x").status_code == 429
    assert len(httpserver.log) == 1 and sleeps == []


def test_it_sends_a_post_without_idempotency_key_once(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/orders", method="POST").respond_with_data("oops", status=500)
    sleeps: list[float] = []
    response = make_client(httpserver, sleeps).request("POST", "/orders", json={"n": 1})
    assert response.status_code == 500
    assert len(httpserver.log) == 1 and sleeps == []


def test_it_retries_a_post_with_an_idempotency_key_with_the_same_key(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_ordered_request("/orders", method="POST").respond_with_data("", status=500)
    httpserver.expect_ordered_request("/orders", method="POST").respond_with_json({"id": 7})
    sleeps: list[float] = []
    response = make_client(httpserver, sleeps).request(
        "POST", "/orders", json={"n": 1}, idempotency_key="order-7"
    )
    assert response.json() == {"id": 7}
    assert [r.headers["Idempotency-Key"] for r, _ in httpserver.log] == ["order-7", "order-7"]
    assert [json.loads(r.data) for r, _ in httpserver.log] == [{"n": 1}, {"n": 1}]


def test_it_lets_the_caller_mark_a_convergent_post_as_safe_to_repeat(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_ordered_request("/domain", method="POST").respond_with_data("", status=502)
    httpserver.expect_ordered_request("/domain", method="POST").respond_with_data("", status=200)
    sleeps: list[float] = []
    client = make_client(httpserver, sleeps)
    assert client.request("POST", "/domain", json={}, idempotent=True).status_code == 200
    assert len(httpserver.log) == 2


def test_it_does_not_retry_a_client_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("bad", status=400)
    sleeps: list[float] = []
    assert make_client(httpserver, sleeps).request("GET", "/x").status_code == 400
    assert len(httpserver.log) == 1


def test_it_follows_the_callers_retry_rule(httpserver: HTTPServer) -> None:
    # Mailu, say: a 429 is its bad-token lock-out and must not be retried.
    httpserver.expect_request("/x").respond_with_data("", status=429)
    sleeps: list[float] = []
    client = make_client(httpserver, sleeps, retryable=lambda r: r.status_code >= 500)
    assert client.request("GET", "/x").status_code == 429
    assert len(httpserver.log) == 1


def test_it_gives_up_after_the_attempt_budget_with_the_last_answer(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_ordered_request("/x").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/x").respond_with_data("", status=500)
    httpserver.expect_ordered_request("/x").respond_with_data("last", status=502)
    sleeps: list[float] = []
    response = make_client(httpserver, sleeps, attempts=3).request("GET", "/x")
    assert (response.status_code, response.text) == (502, "last")
    assert len(httpserver.log) == 3 and len(sleeps) == 2


def test_it_retries_a_timeout_then_succeeds() -> None:
    calls: list[int] = []

    def slow_then_fast(request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.6)
        return Response("ok")

    # Threaded, so the second try is answered while the first handler still sleeps.
    with HTTPServer(threaded=True) as server:
        server.expect_request("/slow").respond_with_handler(slow_then_fast)
        sleeps: list[float] = []
        client = HttpClient(
            "svc",
            base_url=server.url_for("/"),
            timeout=0.2,
            connect_timeout=1.0,
            retry=RetryPolicy(attempts=3, backoff=0.01),
            sleep=sleeps.append,
        )
        assert client.request("GET", "/slow").text == "ok"
        assert len(calls) == 2 and len(sleeps) == 1


def test_it_raises_the_last_transport_failure_after_the_budget() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    client = HttpClient(
        "svc",
        base_url=f"http://127.0.0.1:{port}",
        timeout=1.0,
        retry=RetryPolicy(attempts=4, backoff=0.01),
        sleep=sleeps.append,
    )
    with pytest.raises(TransportFailure) as caught:
        client.request("GET", "/x")
    assert caught.value.attempts == 4 and caught.value.timeout is False
    assert "ConnectError" in caught.value.detail
    assert len(sleeps) == 3


def test_it_never_logs_credentials(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(f"/echo/{API_KEY}").respond_with_data("", status=503)
    sleeps: list[float] = []
    client = make_client(httpserver, sleeps)
    client.request("GET", f"/echo/{API_KEY}", params={"api_key": API_KEY, "page": "2"})
    client.request("POST", f"/echo/{API_KEY}", data={"API": API_KEY, "action": "get"})
    client.request("PUT", f"/echo/{API_KEY}", json={"api_key": API_KEY})
    assert len(httpserver.log) == 7  # 3 + 1 (a POST without key goes once) + 3
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {TOKEN}"
    # Ours and httpx's lines; the server's own access log (werkzeug) shows what it received.
    client_side = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")
    )
    assert "status=503 attempt=1/3" in client_side, "one line per attempt is logged"
    for secret in (TOKEN, API_KEY, "Bearer", "page=2"):
        assert secret not in client_side
    assert "[redacted]" in client_side
    assert TOKEN not in repr(client)


def test_it_redacts_transport_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def leaky(request: httpx.Request) -> httpx.Response:
        # A transport whose error text repeats what it was given (some proxies do).
        raise httpx.ConnectError(f"refused {request.url} {request.headers['Authorization']}")

    client = HttpClient(
        "svc",
        base_url="http://vendor.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=1.0,
        retry=RetryPolicy(attempts=2, backoff=0.0),
        secret_fields=("api_key",),
        transport=httpx.MockTransport(leaky),
    )
    with pytest.raises(TransportFailure) as caught:
        client.request("GET", "/x", params={"api_key": API_KEY})
    assert "ConnectError" in caught.value.detail and "[redacted]" in caught.value.detail
    for secret in (TOKEN, API_KEY):
        assert secret not in str(caught.value) + caught.value.detail + caplog.text


def test_it_logs_one_structured_line_per_attempt(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="penguinmails.http")
    httpserver.expect_ordered_request("/v1/items").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/v1/items").respond_with_data("ok")
    sleeps: list[float] = []
    make_client(httpserver, sleeps).request("GET", "/v1/items", params={"q": "x"})
    lines = [r for r in caplog.records if r.name == "penguinmails.http"]
    assert [(r.service, r.method, r.path, r.status, r.attempt) for r in lines] == [  # type: ignore[attr-defined]
        ("svc", "GET", "/v1/items", 503, 1),
        ("svc", "GET", "/v1/items", 200, 2),
    ]
    assert all(isinstance(r.elapsed_ms, int) for r in lines)  # type: ignore[attr-defined]
    assert lines[0].levelno == logging.WARNING and lines[1].levelno == logging.INFO
    assert "attempt=1/3" in lines[0].getMessage() and "retry_in=" in lines[0].getMessage()


def test_its_jitter_stays_under_the_capped_exponential_ceiling() -> None:
    policy = RetryPolicy(attempts=10, backoff=0.5, max_backoff=4.0)
    assert [policy.delay(n, rand=lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(3, rand=lambda: 0.0) == 0.0
    for attempt in range(1, 8):
        samples = [policy.delay(attempt) for _ in range(200)]
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 4  # spread out, not a fixed step


def test_its_waits_between_retries_are_bounded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=500)
    sleeps: list[float] = []
    make_client(httpserver, sleeps, attempts=6).request("GET", "/x")
    assert len(sleeps) == 5
    assert all(0.0 <= s <= min(0.4, 0.1 * 2**i) for i, s in enumerate(sleeps))


def test_a_pinned_transport_connects_to_the_vetted_address_only(
    httpserver: HTTPServer,
) -> None:
    # A webhook sender vets the URL with netguard.check_url and sends over its addresses: the
    # name is never resolved again (here it could not be: pinned.test is not in any DNS).
    httpserver.expect_request("/hook", method="POST").respond_with_data("thanks")
    target = Target("pinned.test", httpserver.port, ("127.0.0.1",))
    sleeps: list[float] = []
    with HttpClient(
        "webhooks",
        timeout=2.0,
        idempotency_header="Webhook-Id",
        transport=pinned_transport(target),
        sleep=sleeps.append,
    ) as client:
        url = f"http://pinned.test:{httpserver.port}/hook"
        response = client.request("POST", url, json={"e": 1}, idempotency_key="evt-1")
        assert response.text == "thanks"
        request, _ = httpserver.log[0]
        assert request.headers["Host"] == f"pinned.test:{httpserver.port}"
        assert request.headers["Webhook-Id"] == "evt-1"
        with pytest.raises(TransportFailure):
            client.request("GET", f"http://localhost:{httpserver.port}/hook")
    assert len(httpserver.log) == 1
