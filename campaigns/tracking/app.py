"""The tracking endpoints, a plain WSGI app in front of Django (penguinmails/wsgi.py sends it
every path under /t/, on any Host: tracking hosts are tenants' CNAMEs that django-tenants does not
know). Docs: docs/tracking.md.

    GET|HEAD /t/o/<token>.gif   open pixel: 43-byte GIF, never cached
    GET|HEAD /t/c/<token>       302 to the URL signed into the token (http(s) with a host only)
    GET      /t/u/<token>       the unsubscribe page: a confirmation form, changes nothing
    POST     /t/u/<token>       unsubscribe (the page's form and RFC 8058 one-click), idempotent

A bad token (malformed, tampered, expired, another kind) gets 404 everywhere. The pixel's 404
still carries the GIF, so a mail client never shows a broken image; nothing is recorded.

The pixel and the click are the hot path: one HMAC, one LPUSH to Redis, the response; no
PostgreSQL and none of Django's request machinery. If Redis is down the response is the same and
the event is lost (logged): a redirect matters more than its count. Unsubscribes are written to
PostgreSQL at once (campaigns.tracking.unsubscribe) and buffered only when it is unreachable.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.template.loader import render_to_string

from campaigns.tracking import buffer, links, tokens
from campaigns.tracking.unsubscribe import UnknownMessage, unsubscribe
from penguinmails import metrics

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

PREFIX = "/t/"
# The smallest transparent GIF: 1x1, one transparent colour.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = [
    ("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
]
_GIF_HEADERS = [("Content-Type", "image/gif"), ("Content-Length", "43"), *NO_CACHE]
_MAX_BODY = 64 * 1024


def _client_ip(environ: Environ) -> str:
    header = settings.TRACKING_CLIENT_IP_HEADER
    if header:
        forwarded = environ.get("HTTP_" + header.upper().replace("-", "_"), "")
        if forwarded:
            return str(forwarded).rsplit(",", 1)[-1].strip()
    return str(environ.get("REMOTE_ADDR", ""))


def _record(
    kind: tokens.TokenKind, token: tokens.Token, environ: Environ, *, url: str = ""
) -> None:
    event = buffer.Event(
        kind=kind,
        tenant_id=token.tenant_id,
        message_pk=token.message_pk,
        at=time.time(),
        ip=_client_ip(environ),
        user_agent=str(environ.get("HTTP_USER_AGENT", ""))[:500],
        url=url,
        head=environ.get("REQUEST_METHOD") == "HEAD",
    )
    try:
        buffer.push(event)
    except redis.RedisError as exc:
        log.warning("tracking: %s event for message %s lost: %s", kind, token.message_pk, exc)
        return
    metrics.count_tracking_event(kind.value)


def _page(
    start_response: StartResponse, status: str, template: str, context: dict[str, Any]
) -> list[bytes]:
    body = render_to_string(template, context).encode()
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Robots-Tag", "noindex"),
            ("Referrer-Policy", "no-referrer"),
            *NO_CACHE,
        ],
    )
    return [body]


def _not_found(start_response: StartResponse) -> list[bytes]:
    return _page(start_response, "404 Not Found", "tracking/invalid.html", {})


def _method_not_allowed(start_response: StartResponse, allow: str) -> list[bytes]:
    start_response("405 Method Not Allowed", [("Allow", allow), ("Content-Length", "0")])
    return [b""]


def open_pixel(environ: Environ, start_response: StartResponse, raw: str) -> list[bytes]:
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _method_not_allowed(start_response, "GET, HEAD")
    try:
        if not raw.endswith(".gif"):
            raise tokens.BadToken("no .gif")
        token = tokens.verify(raw[:-4], kind=tokens.TokenKind.OPEN)
    except tokens.BadToken:
        start_response("404 Not Found", _GIF_HEADERS)
        return [GIF]
    _record(buffer.OPEN, token, environ)
    start_response("200 OK", _GIF_HEADERS)
    return [GIF]


def click(environ: Environ, start_response: StartResponse, raw: str) -> list[bytes]:
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _method_not_allowed(start_response, "GET, HEAD")
    try:
        token = tokens.verify(raw, kind=tokens.TokenKind.CLICK)
    except tokens.BadToken:
        return _not_found(start_response)
    # The signature proves the sender put this URL in this message; it is checked again in case
    # a future sender signs something it should not (no javascript:, data:, or host-less URL).
    if not links.trackable(token.url):
        return _not_found(start_response)
    _record(buffer.CLICK, token, environ, url=token.url)
    start_response(
        "302 Found",
        [
            ("Location", token.url),
            ("Content-Length", "0"),
            *NO_CACHE,
            ("Referrer-Policy", "no-referrer"),
        ],  # fmt: skip
    )
    return [b""]


def _read_body(environ: Environ) -> None:
    # The form's fields do not matter (the token is the authority), but the body is drained so
    # the connection can be reused.
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), _MAX_BODY)
    except ValueError:
        length = 0
    if length > 0:
        environ["wsgi.input"].read(length)


def _tidy_connections() -> None:
    # What Django's request_started/finished signals do around a request (this app is outside
    # Django's handler): drop connections that are broken or past CONN_MAX_AGE. Never inside an
    # atomic block (only a test wraps a request in one), whose connection must stay open.
    if not connection.in_atomic_block:
        close_old_connections()


def unsubscribe_page(environ: Environ, start_response: StartResponse, raw: str) -> list[bytes]:
    method = environ.get("REQUEST_METHOD")
    if method not in ("GET", "HEAD", "POST"):
        return _method_not_allowed(start_response, "GET, HEAD, POST")
    try:
        token = tokens.verify(raw, kind=tokens.TokenKind.UNSUBSCRIBE)
    except tokens.BadToken:
        return _not_found(start_response)
    action = html.escape(PREFIX + "u/" + raw)
    if method != "POST":
        # Link scanners and prefetchers GET every link in a message: a GET must change nothing.
        return _page(start_response, "200 OK", "tracking/unsubscribe.html", {"action": action})
    _read_body(environ)
    _tidy_connections()
    try:
        unsubscribe(
            token.tenant_id,
            token.message_pk,
            ip=_client_ip(environ) or None,
            user_agent=str(environ.get("HTTP_USER_AGENT", "")),
        )
    except UnknownMessage:
        return _not_found(start_response)
    except DatabaseError as exc:
        log.warning("tracking: unsubscribe of message %s buffered: %s", token.message_pk, exc)
        try:
            buffer.push(
                buffer.Event(buffer.UNSUBSCRIBE, token.tenant_id, token.message_pk, time.time(),
                             _client_ip(environ), str(environ.get("HTTP_USER_AGENT", ""))[:500])
            )  # fmt: skip
        except redis.RedisError:
            log.exception("tracking: unsubscribe of message %s failed", token.message_pk)
            return _page(start_response, "503 Service Unavailable", "tracking/retry.html",
                         {"action": action})  # fmt: skip
    finally:
        _tidy_connections()
    metrics.count_tracking_event(tokens.TokenKind.UNSUBSCRIBE.value)
    return _page(start_response, "200 OK", "tracking/unsubscribed.html", {})


_ROUTES = {
    tokens.TokenKind.OPEN: open_pixel,
    tokens.TokenKind.CLICK: click,
    tokens.TokenKind.UNSUBSCRIBE: unsubscribe_page,
}


def tracking_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """The app for paths under /t/ (`/t/<kind>/<token>`)."""
    path = environ.get("PATH_INFO", "")
    kind, _, raw = path[len(PREFIX) :].partition("/")
    handler = _ROUTES.get(kind)
    if handler is None or not raw or "/" in raw:
        return _not_found(start_response)
    return handler(environ, start_response, raw)


def with_tracking(django_app: WSGIApp) -> WSGIApp:
    """`django_app`, except that paths under /t/ go to the tracking app whatever the Host."""

    def application(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return tracking_app(environ, start_response)
        return django_app(environ, start_response)

    return application
