"""One HTTP layer for every outside service (Hostwinds, Mailu, Cloudflare, Loops; Stripe,
PostHog and webhooks next): timeouts, one retry and backoff policy, idempotency, redaction and a
log line per attempt. Each service's client keeps its own error mapping (`XxxError(permanent=)`)
and hands the transport and the retries to `HttpClient` (see docs/infrastructure.md, "Talking to
outside services").

The policy, in one place:

- Timeouts: connect and read, from the caller's settings.
- Retries: on a connection error, a timeout, 429 or 5xx (a client may narrow this with
  `retryable`, e.g. Mailu never retries its 429 lock-out), at most `RetryPolicy.attempts` tries in
  all. Only requests that are safe to send twice are retried: idempotent methods (GET, HEAD,
  OPTIONS, PUT, DELETE), requests carrying the service's idempotency key (`Idempotency-Key` for
  Stripe and Loops), and requests the client marks `idempotent=True` because it makes them
  convergent (Mailu and Cloudflare creates answer "exists" the second time, and the client reads
  that back as success). A POST without any of these goes out once: a timeout after the server
  acted would otherwise do the thing twice.
- Backoff: exponential with full jitter, `uniform(0, min(max_backoff, backoff * 2**(n-1)))`, so
  workers that failed together do not come back together. A `Retry-After` on 429/503 is waited
  out instead, unless it is longer than `max_retry_after`: then the last answer goes back to the
  caller, whose job is retried later by the queue instead of holding a worker.
- Redaction: the values of `Authorization`-like headers and of the query/body fields the caller
  names (`secret_fields`, e.g. Hostwinds' `API` form field) are scrubbed from every line this
  module logs and from `TransportFailure` messages. Query strings and bodies are never logged.
- One log line per attempt on the `penguinmails.http` logger, with `extra` fields for structured
  handlers: service, method, path, status, attempt, elapsed_ms (and retry_in when it waits).

The transport is injectable (`transport=`): tests pass none and talk to a local server; a
webhook sender passes `pinned_transport(netguard.check_url(url))`, which connects only to the
addresses netguard vetted while TLS still checks the certificate against the URL's host name.

This module imports no app.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

from penguinmails.netguard import Target

logger = logging.getLogger("penguinmails.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Headers whose values are credentials wherever they appear.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
REDACTED = "[redacted]"


class _DropHttpxRequestLines(logging.Filter):
    """httpx logs each request's full URL, query string and all, at INFO ("HTTP Request: ...").
    Our own line per attempt replaces it, redacted; httpx's warnings and errors still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("HTTP Request:")


logging.getLogger("httpx").addFilter(_DropHttpxRequestLines())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is tried. `attempts` counts the first try."""

    attempts: int = 3
    backoff: float = 0.5  # seconds: the ceiling of the first wait
    max_backoff: float = 30.0  # seconds: the ceiling never grows past this
    max_retry_after: float = 60.0  # a longer Retry-After ends the retries (the queue waits)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: a uniform wait below the exponential ceiling for retry `attempt` (1-)."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** max(0, attempt - 1))
        return float(ceiling * rand())


class TransportFailure(Exception):
    """No answer on the last attempt: the connection failed or timed out. Always worth a later
    try; the message is redacted and names the exception class, never the request."""

    def __init__(self, message: str, *, detail: str, timeout: bool, attempts: int) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail  # `ConnectError: [Errno 111] Connection refused`, redacted
        self.timeout = timeout
        self.attempts = attempts


def default_retryable(response: httpx.Response) -> bool:
    """429 (slow down) and 5xx (the server's trouble) pass; other 4xx stay wrong when resent."""
    return response.status_code == 429 or response.status_code >= 500


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait (429/503 `Retry-After`: seconds or an HTTP date)."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, float(when) - (time.time() if now is None else now))


def _secret_values(mapping: Any, names: Collection[str]) -> list[str]:
    if not isinstance(mapping, Mapping):
        return []
    found: list[str] = []
    for key, value in mapping.items():
        if str(key).lower() not in names:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        found += [str(v) for v in values if v not in (None, "")]
    return found


def _header_secrets(headers: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    for key, value in headers.items():
        if key.lower() in SECRET_HEADERS and value:
            found.append(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.lower() in ("bearer", "basic", "token"):
                found.append(credential)
    return found


class HttpClient:
    """An httpx client with the platform's timeouts, retries, redaction and logging.

    `request()` returns the last response, whatever its status (the service's client maps it to
    its own errors), or raises `TransportFailure` when the last attempt got no answer.
    """

    def __init__(
        self,
        service: str,
        *,
        base_url: str = "",
        timeout: float,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_header: str | None = None,
        secret_fields: Collection[str] = (),
        retryable: Callable[[httpx.Response], bool] = default_retryable,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        failure_level: int = logging.WARNING,
    ) -> None:
        self.service = service
        # A caller that records failures itself (and says when one is new) logs them at INFO.
        self._failure_level = failure_level
        self.retry = retry or RetryPolicy()
        self.idempotency_header = idempotency_header
        self._secret_fields = frozenset(name.lower() for name in secret_fields)
        self._retryable = retryable
        self._sleep = sleep
        self._rand = rand
        self._http = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(
                timeout, connect=timeout if connect_timeout is None else connect_timeout
            ),
            transport=transport,
        )

    def __repr__(self) -> str:  # never a header: the token lives there
        return f"HttpClient({self.service!r}, base_url={str(self._http.base_url)!r})"

    @property
    def headers(self) -> httpx.Headers:
        """The headers sent with every request (mutable, as httpx's)."""
        return self._http.headers

    @property
    def base_url(self) -> httpx.URL:
        return self._http.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- redaction -------------------------------------------------------------------------------
    def secrets(self, *parts: Any) -> list[str]:
        """The credential values in the default headers and in the given params/body/headers."""
        found = _header_secrets(self._http.headers)
        for part in parts:
            found += _secret_values(part, self._secret_fields)
            if isinstance(part, Mapping):
                found += _header_secrets({str(k): str(v) for k, v in part.items()})
        # Longest first, so a token is scrubbed before any shorter value inside it.
        return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)

    def redact(self, text: str, secrets: Collection[str] | None = None) -> str:
        for secret in self.secrets() if secrets is None else secrets:
            text = text.replace(secret, REDACTED)
        return text

    # --- the request -----------------------------------------------------------------------------
    def may_retry(self, method: str, *, idempotency_key: str = "", idempotent: bool | None) -> bool:
        if idempotent is not None:
            return idempotent
        return method.upper() in IDEMPOTENT_METHODS or bool(idempotency_key)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str = "",
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send, retrying per the policy. `idempotency_key` goes in the service's header;
        `idempotent` overrides the method rule for requests the caller knows are safe (True)
        or unsafe (False) to repeat."""
        method = method.upper()
        extra_headers = dict(headers or {})
        if idempotency_key:
            if not self.idempotency_header:
                raise ValueError(f"{self.service} has no idempotency header configured.")
            extra_headers[self.idempotency_header] = idempotency_key
        attempts = (
            self.retry.attempts
            if self.may_retry(method, idempotency_key=idempotency_key, idempotent=idempotent)
            else 1
        )
        request = self._http.build_request(
            method, url, params=params, json=json, data=data, headers=extra_headers
        )
        secrets = self.secrets(params, data, json, extra_headers)
        for attempt in range(1, max(1, attempts) + 1):
            last = attempt >= attempts
            started = time.monotonic()
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:  # includes timeouts
                elapsed = time.monotonic() - started
                wait = None if last else self.retry.delay(attempt, self._rand)
                self._log(request, None, attempt, attempts, elapsed, wait, secrets, exc)
                if last:
                    raise self._failure(exc, attempt, secrets) from None
                self._sleep(wait or 0.0)
                continue
            elapsed = time.monotonic() - started
            wait = None if last else self._wait_for(response, attempt)
            self._log(request, response, attempt, attempts, elapsed, wait, secrets, None)
            if wait is None:
                return response
            response.close()
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _wait_for(self, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before another try, or None to hand this response back."""
        if not self._retryable(response):
            return None
        asked = retry_after(response)
        if asked is None:
            return self.retry.delay(attempt, self._rand)
        return asked if asked <= self.retry.max_retry_after else None

    def _failure(
        self, exc: httpx.TransportError, attempts: int, secrets: Collection[str]
    ) -> TransportFailure:
        timeout = isinstance(exc, httpx.TimeoutException)
        detail = self.redact(f"{type(exc).__name__}: {exc}", secrets)
        what = "timed out" if timeout else "connection failed"
        return TransportFailure(
            f"{self.service}: {what} ({detail})", detail=detail, timeout=timeout, attempts=attempts
        )

    def _log(
        self,
        request: httpx.Request,
        response: httpx.Response | None,
        attempt: int,
        attempts: int,
        elapsed: float,
        wait: float | None,
        secrets: Collection[str],
        error: Exception | None,
    ) -> None:
        path = self.redact(request.url.path, secrets)  # never the query string
        status: int | str = response.status_code if response is not None else type(error).__name__
        fields: dict[str, object] = {
            "service": self.service,
            "method": request.method,
            "path": path,
            "status": status,
            "attempt": attempt,
            "elapsed_ms": round(elapsed * 1000),
        }
        message = (
            f"service={self.service} method={request.method} path={path} status={status} "
            f"attempt={attempt}/{attempts} elapsed_ms={fields['elapsed_ms']}"
        )
        if wait is not None:
            fields["retry_in"] = round(wait, 3)
            message += f" retry_in={wait:.3f}s"
        ok = response is not None and response.status_code < 400
        logger.log(logging.INFO if ok else self._failure_level, "http %s", message, extra=fields)


# --- webhooks: connect to the address netguard vetted ---------------------------------------------
class _PinnedBackend(httpcore.SyncBackend):
    """Connects to `target.addresses` instead of resolving the host name again (DNS rebinding);
    refuses any other host, so a redirect cannot lead elsewhere on this transport."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if host.strip("[]").lower() != self.target.host or port != self.target.port:
            raise httpcore.ConnectError(f"{host}:{port} is not the vetted destination")
        last: Exception | None = None
        for address in self.target.addresses:
            try:
                return super().connect_tcp(
                    address, port, timeout, local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no vetted address")


def pinned_transport(target: Target, **options: Any) -> httpx.HTTPTransport:
    """An httpx transport that reaches `target` (from `netguard.check_url`) on its vetted
    addresses only. TLS still sends SNI and checks the certificate for `target.host`, since
    httpcore takes those from the request URL, not from the connected address:

        target = netguard.check_url(endpoint.url)           # again just before sending
        with HttpClient(
            "webhooks", timeout=5, idempotency_header="Webhook-Id",
            transport=pinned_transport(target),
        ) as http:
            http.request("POST", endpoint.url, json=event, idempotency_key=event_id)
    """
    transport = httpx.HTTPTransport(**options)
    # httpx 0.28 takes no network backend; its httpcore pool keeps one in this attribute.
    transport._pool._network_backend = _PinnedBackend(target)
    return transport
