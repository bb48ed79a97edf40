"""A fake Mailu admin API v1 on loopback, following Mailu 2024.06's handlers.

Real HTTP (http.server in a thread), the same auth rules (401 without a header, 403 on a bad
token, 429 once too many bad tokens came from the client, even with a good token), the same
`{"code", "message"}` bodies and messages, duplicate checks across domains, the `max_users` /
`max_aliases` limits checked before duplicates, alias destinations that must be existing users,
and real 2048-bit DKIM keys published in `dns_dkim`. Tests may inject failures (`fail_next`)
and read every request the server saw (`requests`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from deliverability.dns.records import generate_dkim_keypair

Response = tuple[int, Any]


@dataclass
class SeenRequest:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class FakeMailu:
    token: str = "mailu-test-token"
    hostname: str = "mail.pm.test"
    dkim_selector: str = "dkim"
    lockout_after: int = 5  # AUTH_RATELIMIT_IP 5/hour
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    dkim_keys: dict[str, str] = field(default_factory=dict)  # domain -> public key b64
    requests: list[SeenRequest] = field(default_factory=list)
    bad_tokens: int = 0
    _failures: list[tuple[int, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeMailu:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = fake.dispatch(
                    self.command, self.path, self.headers.get("Authorization"), raw
                )
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

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
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"

    def fail_next(self, status: int = 503, *, count: int = 1, delay: float = 0.0) -> None:
        """The next `count` authorised requests answer `status` (after `delay` seconds)."""
        self._failures += [(status, delay)] * count

    def seen(self, method: str | None = None, path: str | None = None) -> list[SeenRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    # --- dispatch --------------------------------------------------------------------------
    def dispatch(self, method: str, path: str, auth: str | None, raw: bytes) -> Response:
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(SeenRequest(method, path, auth, body))
            # Mailu checks its rate limiter before the token, so a locked-out IP gets 429 even
            # with the right token.
            if self.bad_tokens >= self.lockout_after:
                return 429, {"message": "Too many attempts from your IP (rate-limit)"}
            if not auth:
                return 401, {"message": "A valid Authorization header is mandatory"}
            if auth.removeprefix("Bearer ") != self.token:
                self.bad_tokens += 1
                return 403, {"message": "Invalid API token"}
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            time.sleep(failure[1])
            return failure[0], {"code": failure[0], "message": "Injected failure"}
        if not path.startswith("/api/v1/"):
            return 404, {"message": "Not found"}
        route = unquote(path[len("/api/v1") :].split("?")[0])
        for pattern, verb, handler in self._routes():
            match = re.fullmatch(pattern, route)
            if match and verb == method:
                with self._lock:
                    return handler(body, *match.groups())
        return 405 if any(re.fullmatch(p, route) for p, _, _ in self._routes()) else 404, {
            "message": "The method is not allowed for the requested URL."
        }

    def _routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        return [
            (r"/domain", "GET", self._list_domains),
            (r"/domain", "POST", self._create_domain),
            (r"/domain/([^/]+)", "GET", self._get_domain),
            (r"/domain/([^/]+)", "DELETE", self._delete_domain),
            (r"/domain/([^/]+)/dkim", "POST", self._generate_dkim),
            (r"/domain/([^/]+)/users", "GET", self._domain_users),
            (r"/user", "GET", self._list_users),
            (r"/user", "POST", self._create_user),
            (r"/user/([^/]+)", "GET", self._get_user),
            (r"/user/([^/]+)", "PATCH", self._update_user),
            (r"/user/([^/]+)", "DELETE", self._delete_user),
            (r"/alias", "GET", self._list_aliases),
            (r"/alias", "POST", self._create_alias),
            (r"/alias/destination/([^/]+)", "GET", self._domain_aliases),
            (r"/alias/([^/]+)", "GET", self._get_alias),
            (r"/alias/([^/]+)", "PATCH", self._update_alias),
            (r"/alias/([^/]+)", "DELETE", self._delete_alias),
        ]

    # --- domains ---------------------------------------------------------------------------
    def _domain_view(self, name: str, *, skip_none: bool) -> dict[str, Any]:
        d = self.domains[name]
        key = self.dkim_keys.get(name)
        view = {
            **d,
            "dns_mx": f"{name}. 600 IN MX 10 {self.hostname}.",
            "dns_spf": f'{name}. 600 IN TXT "v=spf1 mx a:{self.hostname} ~all"',
            "dns_dkim": (
                f'{self.dkim_selector}._domainkey.{name}. 600 IN TXT "v=DKIM1; k=rsa; p={key}"'
                if key
                else None
            ),
            "dns_dmarc": (
                f'_dmarc.{name}. 600 IN TXT "v=DMARC1; p=reject; adkim=s; aspf=s"' if key else None
            ),
        }
        # List endpoints marshal with skip_none=True, single GETs include nulls.
        return {k: v for k, v in view.items() if v is not None} if skip_none else view

    def _list_domains(self, body: Any) -> Response:
        return 200, [self._domain_view(n, skip_none=True) for n in self.domains]

    def _create_domain(self, body: Any) -> Response:
        if not isinstance(body, dict) or "name" not in body:
            return 400, {
                "errors": {"name": "'name' is a required property"},
                "message": "Input payload validation failed",
            }
        name = body["name"].lower()
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", name):
            return 400, {"code": 400, "message": f"Domain name {name} is not valid"}
        if name in self.domains:
            return 409, {"code": 409, "message": f"Duplicate domain name {name}"}
        self.domains[name] = {
            "name": name,
            "comment": body.get("comment"),
            "managers": [],
            "max_users": body.get("max_users", -1),
            "max_aliases": body.get("max_aliases", -1),
            "max_quota_bytes": body.get("max_quota_bytes", 0),
            "signup_enabled": body.get("signup_enabled", False),
            "alternatives": [],
        }
        return 200, {"code": 200, "message": f"Domain {name} has been created"}

    def _get_domain(self, body: Any, name: str) -> Response:
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", name):
            # Mailu's quirk: an invalid name answers HTTP 200 with an error body.
            return 200, {"code": 400, "message": f"Domain {name} is not a valid domain"}
        if name not in self.domains:
            return 404, {"code": 404, "message": f"Domain {name} does not exist"}
        return 200, self._domain_view(name, skip_none=False)

    def _delete_domain(self, body: Any, name: str) -> Response:
        if name not in self.domains:
            return 404, {"code": 404, "message": f"Domain {name} does not exist"}
        del self.domains[name]
        self.dkim_keys.pop(name, None)
        for email in [e for e in self.users if e.endswith("@" + name)]:
            del self.users[email]
        for email in [e for e in self.aliases if e.endswith("@" + name)]:
            del self.aliases[email]
        return 200, {"code": 200, "message": f"Domain {name} has been deleted"}

    def _generate_dkim(self, body: Any, name: str) -> Response:
        if name not in self.domains:
            return 404, {"code": 404, "message": f"Domain {name} does not exist"}
        self.dkim_keys[name] = generate_dkim_keypair().public_key_b64
        return 200, {
            "code": 200,
            "message": f"DKIM/DMARC keys have been generated for domain {name}",
        }

    # --- users -----------------------------------------------------------------------------
    def _user_view(self, email: str) -> dict[str, Any]:
        user = dict(self.users[email])
        user["password"] = "$bcrypt-sha256$" + str(hash(user.pop("raw_password")))
        return user

    def _list_users(self, body: Any) -> Response:
        return 200, [self._user_view(e) for e in self.users]

    def _domain_users(self, body: Any, domain: str) -> Response:
        if domain not in self.domains:
            return 404, {"code": 404, "message": f"Domain {domain} does not exist"}
        return 200, [self._user_view(e) for e in self.users if e.endswith("@" + domain)]

    def _create_user(self, body: Any) -> Response:
        missing = [f for f in ("email", "raw_password") if not (body or {}).get(f)]
        if missing:
            return 400, {
                "errors": {f: f"'{f}' is a required property" for f in missing},
                "message": "Input payload validation failed",
            }
        email = body["email"].lower()
        domain = email.rsplit("@", 1)[-1]
        if domain not in self.domains:
            return 404, {"code": 404, "message": f"Domain {domain} does not exist"}
        limit = self.domains[domain]["max_users"]
        count = sum(1 for e in self.users if e.endswith("@" + domain))
        if limit != -1 and count >= limit:
            return 409, {"code": 409, "message": f"Too many users for domain {domain}"}
        if email in self.users:
            return 409, {"code": 409, "message": f"User {email} already exists"}
        self.users[email] = {
            "email": email,
            "raw_password": body["raw_password"],
            "quota_bytes": body.get("quota_bytes", 10**9),
            "quota_bytes_used": 0,
            "enabled": body.get("enabled", True),
            "enable_imap": body.get("enable_imap", True),
            "enable_pop": body.get("enable_pop", False),
            "displayed_name": body.get("displayed_name", ""),
            "comment": body.get("comment"),
        }
        return 200, {"code": 200, "message": f"User {email} has been created"}

    def _get_user(self, body: Any, email: str) -> Response:
        if email not in self.users:
            return 404, {"code": 404, "message": f"User {email} cannot be found"}
        return 200, self._user_view(email)

    def _update_user(self, body: Any, email: str) -> Response:
        if email not in self.users:
            return 404, {"code": 404, "message": f"User {email} cannot be found"}
        for key in ("raw_password", "quota_bytes", "enabled", "displayed_name", "comment"):
            if key in (body or {}):
                self.users[email][key] = body[key]
        return 200, {"code": 200, "message": f"User {email} has been updated"}

    def _delete_user(self, body: Any, email: str) -> Response:
        if email not in self.users:
            return 404, {"code": 404, "message": f"User {email} cannot be found"}
        del self.users[email]
        return 200, {"code": 200, "message": f"User {email} has been deleted"}

    def password_of(self, email: str) -> str:
        """What the fake stored (tests check the password reached Mailu)."""
        return str(self.users[email]["raw_password"])

    # --- aliases ---------------------------------------------------------------------------
    def _list_aliases(self, body: Any) -> Response:
        return 200, list(self.aliases.values())

    def _domain_aliases(self, body: Any, domain: str) -> Response:
        if domain not in self.domains:
            return 404, {"code": 404, "message": f"Domain {domain} cannot be found"}
        return 200, [a for e, a in self.aliases.items() if e.endswith("@" + domain)]

    def _check_destinations(self, destinations: list[str]) -> Response | None:
        for dest in destinations:
            if dest not in self.users:
                return 404, {
                    "code": 404,
                    "message": f"Provided destination email address {dest} does not exist",
                }
        return None

    def _create_alias(self, body: Any) -> Response:
        email = body["email"].lower()
        domain = email.rsplit("@", 1)[-1]
        if domain not in self.domains:
            return 404, {"code": 404, "message": f"Domain {domain} does not exist ({email})"}
        limit = self.domains[domain]["max_aliases"]
        count = sum(1 for e in self.aliases if e.endswith("@" + domain))
        if limit != -1 and count >= limit:
            return 409, {"code": 409, "message": f"Too many aliases for domain {domain}"}
        if error := self._check_destinations(body["destination"]):
            return error
        if email in self.aliases:
            return 409, {"code": 409, "message": f"Duplicate alias {email}"}
        self.aliases[email] = {
            "email": email,
            "destination": body["destination"],
            "comment": body.get("comment"),
            "wildcard": body.get("wildcard", False),
        }
        return 200, {"code": 200, "message": f"Alias {email} has been created"}

    def _get_alias(self, body: Any, email: str) -> Response:
        if email not in self.aliases:
            return 404, {"code": 404, "message": f"Alias {email} cannot be found"}
        return 200, self.aliases[email]

    def _update_alias(self, body: Any, email: str) -> Response:
        if email not in self.aliases:
            return 404, {"code": 404, "message": f"Alias {email} cannot be found"}
        if "destination" in body:
            if error := self._check_destinations(body["destination"]):
                return error
            self.aliases[email]["destination"] = body["destination"]
        return 200, {"code": 200, "message": f"Alias {email} has been updated"}

    def _delete_alias(self, body: Any, email: str) -> Response:
        if email not in self.aliases:
            return 404, {"code": 404, "message": f"Alias {email} cannot be found"}
        del self.aliases[email]
        return 200, {"code": 200, "message": f"Alias {email} has been deleted"}
