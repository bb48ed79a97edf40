"""Publishing a domain's records: one small interface, three implementations.

- manual: publishes nothing and says what the tenant must add (we then verify);
- local: writes into the sandbox DNS server's zone store (dev, demo, tests);
- cloudflare: Cloudflare API v4 (bearer token), idempotent create/update.

Publishing is convergent: a record already right is left alone, a record of ours that changed
is updated in place, and conflicting records at the same name (a second SPF, an old DKIM key)
are removed, since two would make receivers ignore both. Unrelated records (other TXT at the
apex, other MX hosts) are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx

from deliverability.dns.records import (
    DnsRecord,
    RecordPurpose,
    RecordType,
    normalize_name,
    split_txt,
)
from penguinmails.http import HttpClient, RetryPolicy, TransportFailure
from penguinmails.providers import DnsProviderName
from penguinmails.sandbox.dns import ZoneRecord, ZoneStore

logger = logging.getLogger(__name__)


class PublishAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    MANUAL = "manual"  # the tenant must add it; `detail` says how
    SKIPPED = "skipped"  # not this provider's to publish; `detail` says who does


@dataclass(frozen=True)
class PublishOutcome:
    record: DnsRecord
    action: PublishAction
    detail: str = ""


class DnsProviderError(Exception):
    """A failed publish. `permanent` errors (bad token, no such zone) must not be retried."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class DnsProvider(Protocol):
    key: str

    def publish(self, domain: str, records: Sequence[DnsRecord]) -> list[PublishOutcome]: ...

    def unpublish(self, domain: str, records: Sequence[DnsRecord]) -> None: ...


def _in_zone(record: DnsRecord, domain: str) -> bool:
    return record.name == domain or record.name.endswith("." + domain)


def _not_ours(record: DnsRecord, domain: str) -> str | None:
    """Why a record cannot go into the tenant's zone, or None if it can."""
    if record.purpose == RecordPurpose.PTR:
        return "Reverse DNS is set at the VPS provider (the IP's owner), not in the domain's zone."
    if not _in_zone(record, domain):
        return f"Belongs to another zone than {domain}; the platform publishes it."
    return None


def manual_instruction(record: DnsRecord, domain: str) -> str:
    host = record.relative_name(domain)
    if record.type == RecordType.MX:
        return (
            f"Add an MX record: host {host}, mail server {record.value}, "
            f"priority {record.priority}."
        )
    if record.type == RecordType.TXT and record.purpose == RecordPurpose.SPF:
        return (
            f"Add a TXT record: host {host}, value {record.value}. If the domain already has a "
            "record starting with v=spf1, merge into it instead: only one SPF record may exist."
        )
    if record.type == RecordType.CNAME:
        return (
            f"Add a CNAME record: host {host}, target {record.value} (on Cloudflare: DNS only, "
            "not proxied)."
        )
    if record.type == RecordType.PTR:
        return f"Ask the IP's provider to set its reverse DNS (PTR) to {record.value}."
    return f"Add a {record.type} record: host {host}, value {record.value}"


class ManualDnsProvider:
    """The tenant publishes; we give the instructions and verify afterwards."""

    key: str = DnsProviderName.MANUAL

    def publish(self, domain: str, records: Sequence[DnsRecord]) -> list[PublishOutcome]:
        domain = normalize_name(domain)
        return [
            PublishOutcome(record, PublishAction.MANUAL, manual_instruction(record, domain))
            for record in records
        ]

    def unpublish(self, domain: str, records: Sequence[DnsRecord]) -> None:
        return None


# --- local (sandbox DNS) -------------------------------------------------------------------------
def _zone_record(record: DnsRecord) -> ZoneRecord:
    return ZoneRecord.make(
        record.name, record.type, record.value, ttl=record.ttl, priority=record.priority
    )


class LocalDnsProvider:
    """Writes into the sandbox DNS server's store. The sandbox is the whole (offline) DNS, so
    PTR and other zones' records are published too: verification then sees what production
    would once every party has done its part."""

    key: str = DnsProviderName.LOCAL

    def __init__(self, store: ZoneStore) -> None:
        self.store = store

    def publish(self, domain: str, records: Sequence[DnsRecord]) -> list[PublishOutcome]:
        outcomes: list[PublishOutcome] = []
        for record in records:
            wanted = _zone_record(record)
            result: list[PublishAction] = []

            def change(
                current: list[ZoneRecord],
                record: DnsRecord = record,
                wanted: ZoneRecord = wanted,
                result: list[PublishAction] = result,
            ) -> list[ZoneRecord]:
                replaced = [
                    r
                    for r in current
                    if r.name == wanted.name and r != wanted and record.supersedes(r.type, r.value)
                ]
                kept = [r for r in current if r not in replaced]
                if wanted in kept:
                    result.append(PublishAction.UPDATED if replaced else PublishAction.UNCHANGED)
                    return kept
                result.append(PublishAction.UPDATED if replaced else PublishAction.CREATED)
                return [*kept, wanted]

            self.store.update(change)
            outcomes.append(PublishOutcome(record, result[0]))
        return outcomes

    def unpublish(self, domain: str, records: Sequence[DnsRecord]) -> None:
        for record in records:
            self.store.remove(record.name, record.type, _zone_record(record).value)

    def set_address(self, host: str, ips: Sequence[str]) -> None:
        """A records for a host (the mail host, so PTRs are forward-confirmed)."""
        name = normalize_name(host)
        rtype = "A"
        self.store.update(
            lambda current: (
                [r for r in current if not (r.name == name and r.type == rtype)]
                + [ZoneRecord.make(name, rtype, ip) for ip in ips]
            )
        )


# --- Cloudflare ----------------------------------------------------------------------------------
# Cloudflare error codes that mean "this exact record is already there" on create.
_CF_ALREADY_EXISTS = {81057, 81058}


def cloudflare_txt_content(value: str) -> str:
    """Cloudflare stores a long TXT as quoted 255-byte strings and returns it in that form."""
    return " ".join('"' + part.replace('"', '\\"') + '"' for part in split_txt(value))


def parse_cloudflare_txt(content: str) -> str:
    content = content.strip()
    if not content.startswith('"'):
        return content
    parts, current, quoted, escaped = [], "", False, False
    for char in content:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == '"':
            if quoted:
                parts.append(current)
                current = ""
            quoted = not quoted
        elif quoted:
            current += char
    return "".join(parts)


@dataclass(frozen=True)
class CloudflareRecord:
    id: str
    type: str
    name: str
    content: str  # TXT: unquoted and joined
    ttl: int
    priority: int | None = None
    proxied: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> CloudflareRecord:
        content = data.get("content", "")
        if data["type"] == "TXT":
            content = parse_cloudflare_txt(content)
        elif data["type"] in ("CNAME", "MX"):
            content = normalize_name(content)
        return cls(
            id=data["id"],
            type=data["type"],
            name=normalize_name(data["name"]),
            content=content,
            ttl=int(data.get("ttl", 1)),
            priority=data.get("priority"),
            proxied=bool(data.get("proxied", False)),
        )


class CloudflareClient:
    """Cloudflare API v4: zones and DNS records. Errors come as `success: false` + `errors[]`."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.cloudflare.com/client/v4",
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # 429 (rate limit: 1200 requests per 5 minutes, with Retry-After) and 5xx are retried
        # by the layer's default rule.
        self._http = HttpClient(
            "cloudflare",
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            retry=RetryPolicy(attempts=max(1, attempts), backoff=backoff),
            transport=transport,
        )

    def __repr__(self) -> str:  # never the token
        return f"CloudflareClient({str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        # Every call may be retried, creates included: a second create of the same record
        # answers "already exists" (81057/81058), which publishing treats as done.
        try:
            response = self._http.request(method, path, params=params, json=body, idempotent=True)
        except TransportFailure as exc:
            raise DnsProviderError(
                f"Cloudflare {method} {path}: {exc.detail}", permanent=False
            ) from None
        error = self._error(method, path, response)
        if error is not None:
            raise error
        return response.json().get("result")

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response) -> CloudflareError | None:
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code < 400 and data.get("success") is True:
            return None
        errors = data.get("errors") or []
        codes = {e.get("code") for e in errors if isinstance(e, dict)}
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if e) or (
            response.text[:200] or response.reason_phrase
        )
        # 429 (rate limit: 1200 requests per 5 minutes) and 5xx pass; everything else (bad
        # token 401/403, validation 400, no zone 404) stays wrong until someone fixes it.
        transient = response.status_code == 429 or response.status_code >= 500
        return CloudflareError(
            f"Cloudflare {method} {path} failed ({response.status_code}): {text}",
            permanent=not transient,
            status=response.status_code,
            codes=codes,
        )

    def find_zone(self, name: str) -> dict[str, Any] | None:
        zones = self._request("GET", "/zones", params={"name": normalize_name(name)})
        return zones[0] if zones else None

    def zone_for(self, domain: str) -> dict[str, Any]:
        """The zone that holds `domain`: the domain itself or its nearest parent."""
        labels = normalize_name(domain).split(".")
        for i in range(len(labels) - 1):
            zone = self.find_zone(".".join(labels[i:]))
            if zone is not None:
                return zone
        raise DnsProviderError(
            f"No Cloudflare zone for {domain} is visible to this API token.", permanent=True
        )

    def list_records(
        self, zone_id: str, *, name: str | None = None, type: str | None = None
    ) -> list[CloudflareRecord]:
        params: dict[str, str | int] = {"per_page": 100}
        if name:
            params["name"] = normalize_name(name)
        if type:
            params["type"] = type
        records: list[CloudflareRecord] = []
        page = 1
        while True:
            result = self._request(
                "GET", f"/zones/{zone_id}/dns_records", params={**params, "page": page}
            )
            records += [CloudflareRecord.from_api(r) for r in result]
            if len(result) < 100:
                return records
            page += 1

    @staticmethod
    def _body(record: DnsRecord) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": str(record.type),
            "name": record.name,
            "content": (
                cloudflare_txt_content(record.value)
                if record.type == RecordType.TXT
                else record.value
            ),
            "ttl": record.ttl,
            # Proxied records are answered with Cloudflare's addresses: a tracking CNAME would
            # show up as A records, and MX/TXT cannot be proxied anyway.
            "proxied": False,
        }
        if record.priority is not None:
            body["priority"] = record.priority
        return body

    def create_record(self, zone_id: str, record: DnsRecord) -> CloudflareRecord:
        result = self._request("POST", f"/zones/{zone_id}/dns_records", body=self._body(record))
        return CloudflareRecord.from_api(result)

    def update_record(self, zone_id: str, record_id: str, record: DnsRecord) -> CloudflareRecord:
        result = self._request(
            "PUT", f"/zones/{zone_id}/dns_records/{record_id}", body=self._body(record)
        )
        return CloudflareRecord.from_api(result)

    def delete_record(self, zone_id: str, record_id: str) -> None:
        try:
            self._request("DELETE", f"/zones/{zone_id}/dns_records/{record_id}")
        except CloudflareError as exc:
            if exc.status != 404:  # already gone
                raise


class CloudflareError(DnsProviderError):
    def __init__(self, message: str, *, permanent: bool, status: int, codes: set[Any]) -> None:
        super().__init__(message, permanent=permanent)
        self.status = status
        self.codes = codes


def _matches(existing: CloudflareRecord, record: DnsRecord) -> bool:
    if existing.type != record.type:
        return False
    if record.type == RecordType.MX and existing.priority != record.priority:
        return False
    return existing.content == record.value


class CloudflareDnsProvider:
    key: str = DnsProviderName.CLOUDFLARE

    def __init__(self, client: CloudflareClient) -> None:
        self.client = client

    def publish(self, domain: str, records: Sequence[DnsRecord]) -> list[PublishOutcome]:
        domain = normalize_name(domain)
        zone_id = self.client.zone_for(domain)["id"]
        outcomes = []
        for record in records:
            if reason := _not_ours(record, domain):
                outcomes.append(PublishOutcome(record, PublishAction.SKIPPED, reason))
                continue
            outcomes.append(PublishOutcome(record, self._upsert(zone_id, record)))
        return outcomes

    def _upsert(self, zone_id: str, record: DnsRecord) -> PublishAction:
        existing = self.client.list_records(zone_id, name=record.name, type=str(record.type))
        exact = [e for e in existing if _matches(e, record)]
        stale = [e for e in existing if e not in exact[:1] and record.supersedes(e.type, e.content)]
        if exact:
            for extra in stale:
                self.client.delete_record(zone_id, extra.id)
            return PublishAction.UPDATED if stale else PublishAction.UNCHANGED
        if stale:
            self.client.update_record(zone_id, stale[0].id, record)
            for extra in stale[1:]:
                self.client.delete_record(zone_id, extra.id)
            return PublishAction.UPDATED
        try:
            self.client.create_record(zone_id, record)
        except CloudflareError as exc:
            # A concurrent publish created it between our list and create.
            if not exc.codes & _CF_ALREADY_EXISTS:
                raise
            return PublishAction.UNCHANGED
        return PublishAction.CREATED

    def unpublish(self, domain: str, records: Sequence[DnsRecord]) -> None:
        domain = normalize_name(domain)
        zone_id = self.client.zone_for(domain)["id"]
        for record in records:
            if _not_ours(record, domain):
                continue
            for existing in self.client.list_records(
                zone_id, name=record.name, type=str(record.type)
            ):
                if _matches(existing, record):
                    self.client.delete_record(zone_id, existing.id)


def provider_from_settings() -> DnsProvider:
    """The provider named by settings.DNS_PROVIDER (manual, local or cloudflare)."""
    from django.conf import settings

    key = getattr(settings, "DNS_PROVIDER", DnsProviderName.MANUAL)
    if key == DnsProviderName.LOCAL:
        return LocalDnsProvider(ZoneStore(settings.SANDBOX_DNS_ZONES))
    if key == DnsProviderName.CLOUDFLARE:
        return CloudflareDnsProvider(
            CloudflareClient(settings.CLOUDFLARE_API_TOKEN, base_url=settings.CLOUDFLARE_API_URL)
        )
    if key == DnsProviderName.MANUAL:
        return ManualDnsProvider()
    raise DnsProviderError(f"Unknown DNS_PROVIDER {key!r}.", permanent=True)
