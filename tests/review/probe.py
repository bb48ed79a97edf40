"""The review's request probe: send one request, collect any answer outside the allowed set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.test import Client

HUGE_ID = 10**20  # matches \d+ and <int:...>, past any integer column
HUGE = "x" * 100_000
NUL = "bad\x00value"


@dataclass
class Probe:
    failures: list[str] = field(default_factory=list)

    def check(
        self,
        client: Client,
        method: str,
        url: str,
        allowed: set[int],
        *,
        data: Any = None,
        raw: str | None = None,
        who: str = "",
    ) -> int:
        kwargs: dict[str, Any] = {}
        if raw is not None and method.upper() in ("GET", "HEAD"):
            kwargs = {}
        elif raw is not None:
            kwargs = {"data": raw, "content_type": "application/json"}
        elif data is not None:
            kwargs = {"data": data}
        client.raise_request_exception = False  # collect every 500, not only the first
        response = getattr(client, method.lower())(url, **kwargs)
        connection.set_schema_to_public()
        code = response.status_code
        if code not in allowed:
            body = response.content[:200] if not getattr(response, "streaming", False) else b""
            self.failures.append(f"{who} {method} {url} {str(data or raw)[:60]!r}: {code} {body!r}")
        return code
