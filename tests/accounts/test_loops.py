from __future__ import annotations

import json
import logging
import socket

import pytest
from django.test import override_settings
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from penguinmails.mail import send_transactional_now
from penguinmails.mail.loops import LoopsClient, LoopsError

API_KEY = "loops-secret-key-123"
IDS = {"verify_email": "clverify000", "password_reset": "clreset000"}
VARIABLES = {"verify_url": "https://localhost/verify-email/tok/", "name": "Ann"}


def _client(server: HTTPServer) -> LoopsClient:
    return LoopsClient(API_KEY, server.url_for("/api/v1"), IDS, timeout=5, backoff_seconds=0.01)


def _send(client: LoopsClient, key: str = "verify-1-abc") -> None:
    client.send("verify_email", to="ann@example.com", variables=VARIABLES, idempotency_key=key)


def test_it_posts_the_documented_request(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(
        "/api/v1/transactional",
        method="POST",
        headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "verify-1-abc"},
        json={
            "transactionalId": "clverify000",
            "email": "ann@example.com",
            "dataVariables": VARIABLES,
        },
    ).respond_with_json({"success": True})
    _send(_client(httpserver))
    httpserver.check_assertions()
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (400, {"success": False, "message": "Missing required data variable"}, "Missing required"),
        (401, {"message": "Invalid API key"}, "Invalid API key"),
        (404, {"message": "Transactional email not found"}, "not found"),
        (405, {"success": False, "error": "Method not allowed", "message": "x"}, "not allowed"),
    ],
)
def test_it_fails_permanently_without_retrying_on_client_errors(
    httpserver: HTTPServer, status: int, body: dict, text: str
) -> None:
    httpserver.expect_request("/api/v1/transactional").respond_with_json(body, status=status)
    with pytest.raises(LoopsError) as caught:
        _send(_client(httpserver))
    assert caught.value.permanent is True
    assert caught.value.status == status
    assert text in str(caught.value)
    assert len(httpserver.log) == 1


def test_it_treats_a_reused_idempotency_key_as_already_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/transactional").respond_with_json(
        {"success": False, "message": "Idempotency key already used"}, status=409
    )
    _send(_client(httpserver))
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_it_retries_transient_errors_then_succeeds(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_ordered_request("/api/v1/transactional").respond_with_json(
        {"success": False, "message": "busy"}, status=status
    )
    httpserver.expect_ordered_request("/api/v1/transactional").respond_with_json({"success": True})
    _send(_client(httpserver))
    assert len(httpserver.log) == 2
    # Both attempts carry the same key, so Loops can drop a duplicate.
    assert {r.headers["Idempotency-Key"] for r, _ in httpserver.log} == {"verify-1-abc"}


def test_it_gives_up_after_two_retries_as_transient(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/api/v1/transactional").respond_with_data(
        "upstream down", status=502
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(LoopsError) as caught:
        _send(_client(httpserver))
    assert caught.value.permanent is False
    assert caught.value.status == 502
    assert len(httpserver.log) == 3
    assert API_KEY not in caplog.text
    assert "verify-email/tok" not in caplog.text
    assert API_KEY not in repr(_client(httpserver))


def test_it_reports_an_unreachable_server_as_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    client = LoopsClient(API_KEY, f"http://127.0.0.1:{port}/api/v1", IDS, backoff_seconds=0.01)
    with pytest.raises(LoopsError) as caught:
        _send(client)
    assert caught.value.permanent is False


def test_it_refuses_a_kind_without_a_configured_template(httpserver: HTTPServer) -> None:
    client = LoopsClient(API_KEY, httpserver.url_for("/api/v1"), {}, backoff_seconds=0.01)
    with pytest.raises(LoopsError) as caught:
        _send(client)
    assert caught.value.permanent is True
    assert len(httpserver.log) == 0


def test_it_sends_transactional_mail_through_loops_when_configured(
    httpserver: HTTPServer, mailoutbox: list
) -> None:
    seen: list[dict] = []

    def handler(request: Request) -> Response:
        seen.append({"auth": request.headers.get("Authorization"), **json.loads(request.data)})
        return Response(json.dumps({"success": True}), content_type="application/json")

    httpserver.expect_request("/api/v1/transactional", method="POST").respond_with_handler(handler)
    with override_settings(
        LOOP_API_KEY=API_KEY,
        LOOP_API_URL=httpserver.url_for("/api/v1"),
        LOOP_TRANSACTIONAL_IDS=IDS,
    ):
        send_transactional_now(
            "password_reset",
            to="ann@example.com",
            variables={"reset_url": "https://localhost/password-reset/x/y/", "name": "Ann"},
            idempotency_key="reset-1-abc",
        )
    assert seen == [
        {
            "auth": f"Bearer {API_KEY}",
            "transactionalId": "clreset000",
            "email": "ann@example.com",
            "dataVariables": {"reset_url": "https://localhost/password-reset/x/y/", "name": "Ann"},
        }
    ]
    assert mailoutbox == []
