"""Loops (loops.so) transactional email client: POST {base}/transactional.

Wire protocol (see Loops' API reference and the official Go/Ruby SDKs): Bearer auth, JSON body
`{"transactionalId", "email", "dataVariables"}`, optional `Idempotency-Key` header; success is
`200 {"success": true}`; errors carry `error` or `message`. Each of our kinds maps to a published
Loops template through settings.LOOP_TRANSACTIONAL_IDS; the template must declare the same data
variable names as penguinmails.mail.transactional.KINDS (e.g. `verify_url`, `name`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx
from django.conf import settings

from penguinmails.http import HttpClient, RetryPolicy, TransportFailure

logger = logging.getLogger(__name__)


class LoopsError(Exception):
    """A send that failed; `permanent` says whether trying again could help."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


def _error_text(response: httpx.Response) -> str:
    # Loops answers either {"error": ...} or {"message": ...}; its SDKs read `error` first.
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        for field in ("error", "message"):
            if body.get(field):
                return str(body[field])[:200]
    return response.reason_phrase


class LoopsClient:
    """Sends one transactional email per call; retries only rate limits, 5xx and network errors.

    `retries` counts the tries after the first; `backoff_seconds` is the ceiling of the first
    wait (LOOP_RETRY_BACKOFF_MS), doubling per retry, with full jitter (penguinmails/http.py)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        transactional_ids: Mapping[str, str],
        timeout: float = 10.0,
        *,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("Loops API key is empty")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.transactional_ids = dict(transactional_ids)
        self.timeout = timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.transport = transport

    def __repr__(self) -> str:
        # Never show the key, even in a traceback's locals.
        return f"LoopsClient(base_url={self.base_url!r})"

    @classmethod
    def from_settings(cls) -> LoopsClient:
        return cls(
            settings.LOOP_API_KEY,
            settings.LOOP_API_URL,
            settings.LOOP_TRANSACTIONAL_IDS,
            timeout=settings.LOOP_TIMEOUT_SECONDS,
            backoff_seconds=settings.LOOP_RETRY_BACKOFF_MS / 1000,
        )

    def send(
        self, kind: str, *, to: str, variables: Mapping[str, str], idempotency_key: str
    ) -> None:
        """Send `kind` to `to`; returns when Loops accepted it, else raises LoopsError."""
        transactional_id = self.transactional_ids.get(kind)
        if not transactional_id:
            raise LoopsError(
                f"No Loops transactionalId configured for {kind!r} (LOOP_TRANSACTIONAL_IDS).",
                permanent=True,
            )
        body = {
            "transactionalId": transactional_id,
            "email": to,
            "dataVariables": dict(variables),
        }
        # Retried on 429, 5xx and network errors (the layer's default rule), with full-jitter
        # backoff as the official Go SDK does; every attempt carries the same Idempotency-Key,
        # so Loops drops a duplicate. Without a key the POST goes out once.
        with self._client() as http:
            try:
                response = http.request(
                    "POST", "/transactional", json=body, idempotency_key=idempotency_key
                )
            except TransportFailure as exc:
                raise LoopsError(f"Loops unreachable: {exc.detail}", permanent=False) from None
        error = self._error(response, kind=kind, idempotency_key=idempotency_key)
        if error is not None:
            raise error

    def _client(self) -> HttpClient:
        return HttpClient(
            "loops",
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
            timeout=self.timeout,
            retry=RetryPolicy(attempts=self.retries + 1, backoff=self.backoff_seconds),
            idempotency_header="Idempotency-Key",
            transport=self.transport,
        )

    @staticmethod
    def _error(response: httpx.Response, *, kind: str, idempotency_key: str) -> LoopsError | None:
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 409 and idempotency_key:
            # Loops refuses a reused idempotency key: this message was already accepted.
            logger.info("Loops send %s already accepted (key %s)", kind, idempotency_key)
            return None
        message = f"Loops answered {status}: {_error_text(response)}"
        if status == 429 or status >= 500:
            return LoopsError(message, permanent=False, status=status)
        # 400/401/404/405 and anything else unexpected: resending the same request cannot help.
        return LoopsError(message, permanent=True, status=status)
