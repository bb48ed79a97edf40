"""Client for Mailu's admin REST API v1 (Mailu 2.0+; 1.x has no API at all).

Domains, DKIM generation and read-back, users and aliases. The wire details follow Mailu's
`core/admin/mailu/api/v1/*.py` (see ../shared/reference/external-apis.md §2):

- Auth is `Authorization: Bearer <API_TOKEN>`. Every bad token counts toward Mailu's
  `AUTH_RATELIMIT_IP` (5/hour per /24 by default), so a 401/403 is permanent and never retried:
  a misconfigured token in a retry loop would lock our control plane out of the server for an
  hour. A 429 is that lock-out itself, and retrying within it only prolongs it.
- Mutations answer `{"code": 200, "message": ...}`; errors `{"code": 4xx, "message": ...}`.
  `GET /domain/<invalid name>` answers HTTP 200 with `"code": 400` in the body, so the body's
  code is checked too.
- Creates are idempotent for our jobs: a 409 "exists" is read back and treated as success.

The token and user passwords are never logged nor put in exception messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from penguinmails.http import HttpClient, RetryPolicy, TransportFailure

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_ATTEMPTS = 3


class MailuError(Exception):
    """A failed Mailu call. `permanent` errors must not be retried by the job queue."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status


class MailuAuthError(MailuError):
    """Bad or missing token (401/403) or the bad-token lock-out (429): fix the configuration."""


class MailuNotFound(MailuError):
    pass


class MailuConflict(MailuError):
    """409 that is not "already exists": a name clash with an alternative/relay, or a limit."""


@dataclass(frozen=True)
class DkimRecord:
    """The domain's DKIM key as Mailu publishes it in `dns_dkim`."""

    selector: str
    name: str  # `<selector>._domainkey.<domain>`
    txt_value: str  # `v=DKIM1; k=rsa; p=...`
    public_key: str  # the `p=` value (base64 SubjectPublicKeyInfo DER)


@dataclass(frozen=True)
class MailuDomain:
    name: str
    comment: str | None = None
    max_users: int = -1
    max_aliases: int = -1
    max_quota_bytes: int = 0
    signup_enabled: bool = False
    alternatives: list[str] = field(default_factory=list)
    dns_records: dict[str, Any] = field(default_factory=dict)  # dns_mx, dns_spf, dns_dkim, ...

    @property
    def dkim(self) -> DkimRecord | None:
        return parse_dns_dkim(self.dns_records.get("dns_dkim"))

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> MailuDomain:
        return cls(
            name=data["name"],
            comment=data.get("comment"),
            max_users=data.get("max_users", -1),
            max_aliases=data.get("max_aliases", -1),
            max_quota_bytes=data.get("max_quota_bytes", 0),
            signup_enabled=bool(data.get("signup_enabled", False)),
            alternatives=list(data.get("alternatives") or []),
            dns_records={k: v for k, v in data.items() if k.startswith("dns_")},
        )


@dataclass(frozen=True)
class MailuUser:
    email: str
    enabled: bool = True
    quota_bytes: int = 0
    quota_bytes_used: int = 0
    displayed_name: str = ""
    comment: str | None = None
    enable_imap: bool = True
    enable_pop: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> MailuUser:
        # `password` (the bcrypt hash) is deliberately not kept.
        return cls(
            email=data["email"],
            enabled=bool(data.get("enabled", True)),
            quota_bytes=int(data.get("quota_bytes") or 0),
            quota_bytes_used=int(data.get("quota_bytes_used") or 0),
            displayed_name=data.get("displayed_name") or "",
            comment=data.get("comment"),
            enable_imap=bool(data.get("enable_imap", True)),
            enable_pop=bool(data.get("enable_pop", False)),
        )


@dataclass(frozen=True)
class MailuAlias:
    email: str
    destination: list[str]
    comment: str | None = None
    wildcard: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> MailuAlias:
        return cls(
            email=data["email"],
            destination=list(data.get("destination") or []),
            comment=data.get("comment"),
            wildcard=bool(data.get("wildcard", False)),
        )


def parse_dns_dkim(line: str | None) -> DkimRecord | None:
    """`dkim._domainkey.example.com. 600 IN TXT "v=DKIM1; k=rsa; p=MIIB..."` → DkimRecord.

    Mailu has no "get DKIM" endpoint; the key is read back from this zone line, and the selector
    too (it is per-server configuration, `DKIM_SELECTOR`, `dkim` by default)."""
    if not line:
        return None
    name = line.split()[0].rstrip(".")
    quoted = line[line.index('"') :] if '"' in line else ""
    txt = "".join(part for i, part in enumerate(quoted.split('"')) if i % 2 == 1)
    tags = {
        k.strip(): v.strip() for k, _, v in (p.partition("=") for p in txt.split(";")) if v.strip()
    }
    if not tags.get("p") or "._domainkey." not in name:
        return None
    return DkimRecord(
        selector=name.split("._domainkey.")[0],
        name=name,
        txt_value=txt,
        public_key="".join(tags["p"].split()),
    )


class MailuClient:
    """One Mailu server's admin API. `transport` lets tests inject an httpx transport."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = HttpClient(
            "mailu",
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            retry=RetryPolicy(attempts=max(1, attempts), backoff=backoff),
            retryable=_retryable,
            transport=transport,
        )

    def __repr__(self) -> str:  # never the token
        return f"MailuClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MailuClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One API call; the HTTP layer retries 5xx and network errors a bounded number of times.

        Every call may be retried, POSTs included: creates converge (a 409 "exists" is read
        back), and a second DKIM generation only rotates a key nobody has published yet."""
        try:
            response = self._http.request(method, path, json=body, idempotent=True)
        except TransportFailure as exc:
            what = "timed out" if exc.timeout else "unreachable"
            raise MailuError(
                f"Mailu {method} {path} {what}: {exc.detail}", permanent=False
            ) from None
        error = self._error(method, path, response)
        if error is not None:
            raise error
        return response.json() if response.content else None

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response) -> MailuError | None:
        try:
            data = response.json()
        except ValueError:
            data = None
        status = response.status_code
        # The body's code wins when HTTP says 200 (GET /domain/<invalid name> quirk).
        if isinstance(data, dict) and isinstance(data.get("code"), int) and data["code"] >= 400:
            status = max(status, data["code"])
        if status < 400:
            return None
        message = data.get("message") if isinstance(data, dict) else None
        if isinstance(data, dict) and isinstance(data.get("errors"), dict):
            # flask-restx payload validation: {"errors": {"field": "reason"}, "message": ...}
            message = f"{message}: " + "; ".join(f"{k}: {v}" for k, v in data["errors"].items())
        message = message or response.text[:200] or response.reason_phrase
        text = f"Mailu {method} {path} failed ({status}): {message}"
        if status in (401, 403):
            return MailuAuthError(
                f"{text}. Check the server's API token; not retried, since Mailu counts bad "
                "tokens toward its login lock-out.",
                permanent=True,
                status=status,
            )
        if status == 429:
            return MailuAuthError(
                f"{text}. Mailu has locked this IP out after bad tokens (AUTH_RATELIMIT_IP).",
                permanent=True,
                status=status,
            )
        if status == 404:
            return MailuNotFound(text, permanent=True, status=status)
        if status == 409:
            return MailuConflict(text, permanent=True, status=status)
        if status >= 500:
            # An empty API_TOKEN makes Mailu answer 500 to everything: configuration, not load.
            permanent = "API_TOKEN is not configured" in response.text
            return MailuError(text, permanent=permanent, status=status)
        return MailuError(text, permanent=True, status=status)

    def _raise_unless_exists(self, conflict: MailuConflict, path: str) -> None:
        try:
            self._request("GET", path)
        except MailuNotFound:
            raise conflict from None

    # --- domains ---------------------------------------------------------------------------
    def list_domains(self) -> list[MailuDomain]:
        return [MailuDomain.from_api(d) for d in self._request("GET", "/domain")]

    def get_domain(self, name: str) -> MailuDomain:
        return MailuDomain.from_api(self._request("GET", f"/domain/{_p(name)}"))

    def create_domain(
        self,
        name: str,
        *,
        comment: str | None = None,
        max_users: int = -1,
        max_aliases: int = -1,
        max_quota_bytes: int = 0,
    ) -> MailuDomain:
        """Create the domain, or return it if it already exists."""
        body: dict[str, Any] = {
            "name": name,
            "max_users": max_users,
            "max_aliases": max_aliases,
            "max_quota_bytes": max_quota_bytes,
        }
        if comment is not None:
            body["comment"] = comment
        try:
            self._request("POST", "/domain", body)
        except MailuConflict as exc:
            # "Duplicate domain name" also covers a clash with an alternative or a relay; only a
            # read-back tells whether it is our domain that exists.
            self._raise_unless_exists(exc, f"/domain/{_p(name)}")
        return self.get_domain(name)

    def delete_domain(self, name: str, *, missing_ok: bool = True) -> None:
        """Delete the domain with its users and aliases (Mailu cascades)."""
        try:
            self._request("DELETE", f"/domain/{_p(name)}")
        except MailuNotFound:
            if not missing_ok:
                raise

    # --- DKIM ------------------------------------------------------------------------------
    # Not used for sending domains: the platform generates, publishes and signs with its own key,
    # and provisioned Mailu servers have their signing turned off (docs/dns.md, "Who signs").
    # Generating a Mailu key for a platform domain would only give Mailu a key nobody publishes.
    def get_dkim(self, domain: str) -> DkimRecord | None:
        """The domain's current DKIM key, or None if none was generated yet."""
        return self.get_domain(domain).dkim

    def generate_dkim(self, domain: str) -> DkimRecord:
        """Generate a new key (this ROTATES an existing one) and read it back."""
        self._request("POST", f"/domain/{_p(domain)}/dkim")
        dkim = self.get_dkim(domain)
        if dkim is None:
            raise MailuError(
                f"Mailu generated a DKIM key for {domain} but does not publish it.", permanent=False
            )
        return dkim

    def ensure_dkim(self, domain: str) -> DkimRecord:
        """The existing key, or a new one: safe to run twice (no rotation on a re-run)."""
        return self.get_dkim(domain) or self.generate_dkim(domain)

    # --- users -----------------------------------------------------------------------------
    def list_users(self, domain: str | None = None) -> list[MailuUser]:
        path = f"/domain/{_p(domain)}/users" if domain else "/user"
        return [MailuUser.from_api(u) for u in self._request("GET", path)]

    def get_user(self, email: str) -> MailuUser:
        return MailuUser.from_api(self._request("GET", f"/user/{_p(email)}"))

    def create_user(
        self,
        email: str,
        password: str,
        *,
        quota_bytes: int | None = None,
        enabled: bool = True,
        displayed_name: str | None = None,
        comment: str | None = None,
    ) -> MailuUser:
        """Create the mailbox user; if it exists, set the password and settings given here.

        Converging instead of failing makes a re-run job safe, and guarantees the password we
        store (encrypted) is the one Mailu has.
        """
        body: dict[str, Any] = {"email": email, "raw_password": password, "enabled": enabled}
        if quota_bytes is not None:
            body["quota_bytes"] = quota_bytes
        if displayed_name is not None:
            body["displayed_name"] = displayed_name
        if comment is not None:
            body["comment"] = comment
        try:
            self._request("POST", "/user", body)
        except MailuConflict as exc:
            # Mailu checks `max_users` before duplicates, so the message may name the limit even
            # when the user exists: only a read-back tells.
            self._raise_unless_exists(exc, f"/user/{_p(email)}")
            update = {k: v for k, v in body.items() if k != "email"}
            self._request("PATCH", f"/user/{_p(email)}", update)
        return self.get_user(email)

    def update_user(
        self,
        email: str,
        *,
        password: str | None = None,
        quota_bytes: int | None = None,
        enabled: bool | None = None,
        displayed_name: str | None = None,
    ) -> MailuUser:
        body: dict[str, Any] = {}
        if password is not None:
            body["raw_password"] = password
        if quota_bytes is not None:
            body["quota_bytes"] = quota_bytes
        if enabled is not None:
            body["enabled"] = enabled
        if displayed_name is not None:
            body["displayed_name"] = displayed_name
        if body:
            self._request("PATCH", f"/user/{_p(email)}", body)
        return self.get_user(email)

    def delete_user(self, email: str, *, missing_ok: bool = True) -> None:
        try:
            self._request("DELETE", f"/user/{_p(email)}")
        except MailuNotFound:
            if not missing_ok:
                raise

    # --- aliases ---------------------------------------------------------------------------
    def list_aliases(self, domain: str | None = None) -> list[MailuAlias]:
        path = f"/alias/destination/{_p(domain)}" if domain else "/alias"
        return [MailuAlias.from_api(a) for a in self._request("GET", path)]

    def get_alias(self, email: str) -> MailuAlias:
        return MailuAlias.from_api(self._request("GET", f"/alias/{_p(email)}"))

    def create_alias(
        self, email: str, destination: list[str], *, comment: str | None = None
    ) -> MailuAlias:
        """Create the alias, or set the destinations of the existing one.

        Every destination must already be a Mailu user (Mailu answers 404 otherwise)."""
        body: dict[str, Any] = {"email": email, "destination": destination}
        if comment is not None:
            body["comment"] = comment
        try:
            self._request("POST", "/alias", body)
        except MailuConflict as exc:
            # `Duplicate alias X`, or `Too many aliases` (checked first, even for a duplicate).
            self._raise_unless_exists(exc, f"/alias/{_p(email)}")
            self._request("PATCH", f"/alias/{_p(email)}", {"destination": destination})
        return self.get_alias(email)

    def update_alias(self, email: str, *, destination: list[str]) -> MailuAlias:
        self._request("PATCH", f"/alias/{_p(email)}", {"destination": destination})
        return self.get_alias(email)

    def delete_alias(self, email: str, *, missing_ok: bool = True) -> None:
        try:
            self._request("DELETE", f"/alias/{_p(email)}")
        except MailuNotFound:
            if not missing_ok:
                raise


def _retryable(response: httpx.Response) -> bool:
    # 5xx only: a 429 is Mailu's bad-token lock-out (retrying prolongs it), and an empty
    # API_TOKEN makes Mailu answer 500 to everything, which no retry fixes.
    return response.status_code >= 500 and "API_TOKEN is not configured" not in response.text


def _p(segment: str) -> str:
    return quote(segment, safe="@")
