"""A fake Cloudflare API v4 (zones and DNS records) on loopback.

Real HTTP, the v4 envelope (`success`, `errors[]`, `messages[]`, `result`, `result_info`),
bearer-token auth (403 with code 9109 on a bad token, 400 code 6003 without one), exact
`name`/`type` filters, code 81058 for an identical record, and long TXT content stored (and
returned) as quoted 255-byte strings like Cloudflare does. `fail_next` injects failures.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from deliverability.dns.providers import cloudflare_txt_content, parse_cloudflare_txt

Response = tuple[int, Any]


def _envelope(result: Any, *, count: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if count is not None:
        body["result_info"] = {"page": 1, "per_page": 100, "count": count, "total_count": count}
    return body


def _error(code: int, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": []}


@dataclass
class FakeCloudflare:
    token: str = "cf-test-token"
    zones: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> zone
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> record
    requests: list[tuple[str, str]] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def add_zone(self, name: str) -> str:
        zone_id = uuid.uuid4().hex
        self.zones[zone_id] = {"id": zone_id, "name": name, "status": "active"}
        return zone_id

    def records_named(self, name: str, type: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records.values()
            if r["name"] == name and (type is None or r["type"] == type)
        ]

    def fail_next(self, status: int = 503, *, count: int = 1) -> None:
        self._failures += [status] * count

    def start(self) -> FakeCloudflare:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = fake.dispatch(
                    self.command, self.path, self.headers.get("Authorization"), raw
                )
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/client/v4"

    def dispatch(self, method: str, url: str, auth: str | None, raw: bytes) -> Response:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path.removeprefix("/client/v4")
        with self._lock:
            self.requests.append((method, path))
            if not auth or not auth.startswith("Bearer "):
                return 400, _error(6003, "Invalid request headers")
            if auth.removeprefix("Bearer ") != self.token:
                return 403, _error(9109, "Invalid access token")
            if self._failures:
                status = self._failures.pop(0)
                return status, _error(10000 + status, "Injected failure")
            body = json.loads(raw) if raw else {}
            segments = path.strip("/").split("/")
            if segments == ["zones"] and method == "GET":
                zones = [
                    z for z in self.zones.values() if z["name"] == query.get("name", z["name"])
                ]
                return 200, _envelope(zones, count=len(zones))
            if len(segments) >= 3 and segments[0] == "zones" and segments[2] == "dns_records":
                zone_id = segments[1]
                if zone_id not in self.zones:
                    return 404, _error(
                        7003,
                        "Could not route to /zones/..., perhaps your object identifier is invalid?",
                    )
                record_id = segments[3] if len(segments) > 3 else None
                return self._records(method, zone_id, record_id, query, body)
            return 404, _error(7000, "No route for that URI")

    def _stored(self, zone_id: str, body: dict[str, Any]) -> dict[str, Any]:
        content = body.get("content", "")
        if body.get("type") == "TXT":
            # Stored and returned as quoted character-strings, split at 255 bytes.
            content = cloudflare_txt_content(parse_cloudflare_txt(content))
        return {
            "zone_id": zone_id,
            "type": body["type"],
            "name": body["name"].rstrip(".").lower(),
            "content": content,
            "ttl": body.get("ttl", 1),
            "proxied": body.get("proxied", False),
            **({"priority": body["priority"]} if "priority" in body else {}),
        }

    def _records(
        self,
        method: str,
        zone_id: str,
        record_id: str | None,
        query: dict[str, str],
        body: dict[str, Any],
    ) -> Response:
        if record_id is None and method == "GET":
            found = [
                r
                for r in self.records.values()
                if r["zone_id"] == zone_id
                and r["name"] == query.get("name", r["name"])
                and r["type"] == query.get("type", r["type"])
            ]
            return 200, _envelope(found, count=len(found))
        if record_id is None and method == "POST":
            if not body.get("type") or not body.get("name") or "content" not in body:
                return 400, _error(9005, "Content for record is invalid.")
            if body["type"] == "MX" and "priority" not in body:
                return 400, _error(9101, "Priority must be set for MX records.")
            if body["type"] == "CNAME" and self.records_named(body["name"].lower()):
                return 400, _error(
                    81053, "An A, AAAA, or CNAME record with that host already exists."
                )
            stored = self._stored(zone_id, body)
            for r in self.records.values():
                if (r["name"], r["type"], r["content"]) == (
                    stored["name"],
                    stored["type"],
                    stored["content"],
                ):
                    return 400, _error(81058, "An identical record already exists.")
            stored["id"] = uuid.uuid4().hex
            self.records[stored["id"]] = stored
            return 200, _envelope(stored)
        if record_id not in self.records:
            return 404, _error(81044, "Record does not exist.")
        if method == "PUT":
            stored = self._stored(zone_id, body)
            stored["id"] = record_id
            self.records[record_id] = stored
            return 200, _envelope(stored)
        if method == "DELETE":
            del self.records[record_id]
            return 200, _envelope({"id": record_id})
        if method == "GET":
            return 200, _envelope(self.records[record_id])
        return 405, _error(10000, "Method not allowed")
