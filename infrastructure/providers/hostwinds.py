"""Hostwinds Cloud API client (vendor notes: docs/infrastructure.md).

The API is one endpoint, `POST .../cloud/api.php`, form-encoded, the operation chosen by
`action=` and the key sent as the form field `API=`. Vendor quirks this client handles:

- Errors come back with HTTP 200:
  `[{"result": "error", "action": ..., "message": ..., "ERROR": "..."}]`
  (a list, or sometimes a bare object). Reads answer `{"success": ...}`, mutations a list of
  `{"result": "success", ...}` objects.
- The key is allow-listed by IPv4 source address. An unlisted address, or any IPv6 source, gets
  `{"result":"error","action":"Authorization","message":"Not Authorized!"}`: permanent, and the
  message tells ops to allow-list the worker's address. We bind the client to IPv4 for that reason.
- A JSON body is refused ("Authorization Failure"), so we only ever send form fields.
- `add_instance` does not return the new serviceid: we find the server by its name (`srvrname`)
  afterwards, which is also what makes creation idempotent.

The API key is never logged and never put in an exception message: it travels in the body only,
and the HTTP layer (penguinmails/http.py) is told that the `API` field is a secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from infrastructure.providers.base import (
    NotSupported,
    ProviderError,
    ResourceFigures,
    ServerInfo,
    ServerNotFound,
    ServerRef,
    ServerStatus,
)
from penguinmails.http import HttpClient, RetryPolicy, TransportFailure
from penguinmails.providers import VpsProviderName

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://clients.hostwinds.com/cloud/api.php"

ALLOW_LIST_HELP = (
    'Hostwinds refused the API key ("Not Authorized!"). Hostwinds allow-lists each API key by '
    "IPv4 source address: add this worker's public IPv4 address to the key's allow-list at "
    "https://clients.hostwinds.com/cloud/api_keys.php (requests from IPv6 or from any other "
    "address are refused the same way), and check that HOSTWIND_API_KEY is the right key."
)

# The message Hostwinds gives for an unknown or foreign serviceid.
_INVALID_SERVICE_ID = "valid serviceid"

# Error messages that describe a passing condition rather than bad input. The vendor documents
# none, so this list is a guess [UNVERIFIED]; every other `result: error` is treated as permanent
# (PenguinMails' own client never retries input errors either).
DEFAULT_TRANSIENT_MESSAGES: tuple[str, ...] = (
    "try again",
    "temporarily",
    "timed out",
    "timeout",
    "busy",
    "maintenance",
)

# Actions that only read: safe to send twice, so the HTTP layer may retry them (every call is a
# POST, which it would otherwise send once).
READ_ACTIONS = frozenset(
    {"get_instances", "get_instance", "get_instance_ids", "get_instance_ips", "check_serviceid"}
)

# Instance `status` / `vm_state` values to our enum. Sources show `active`, `RESIZED`, `error`,
# `suspended`; the OpenStack-style vm_state values are plausible but UNVERIFIED. Anything else
# becomes UNKNOWN with the raw value kept, so a new vendor word shows up instead of being guessed.
STATUS_MAP: dict[str, ServerStatus] = {
    "active": ServerStatus.ACTIVE,
    "resized": ServerStatus.ACTIVE,  # resized, waiting for confirm_upgrade; it still runs
    "building": ServerStatus.PENDING,
    "build": ServerStatus.PENDING,
    "pending": ServerStatus.PENDING,
    "creating": ServerStatus.PENDING,
    "rebuilding": ServerStatus.PENDING,
    "rebooting": ServerStatus.PENDING,
    "stopped": ServerStatus.STOPPED,
    "shutoff": ServerStatus.STOPPED,
    "suspended": ServerStatus.STOPPED,
    "paused": ServerStatus.STOPPED,
    "deleted": ServerStatus.TERMINATED,
    "terminated": ServerStatus.TERMINATED,
    "cancelled": ServerStatus.TERMINATED,
    "error": ServerStatus.ERROR,
}


def normalise_status(instance: Mapping[str, Any]) -> tuple[ServerStatus, str]:
    """Our status from an instance object, and the raw words it came from."""
    status = str(instance.get("status") or "").strip()
    vm_state = str(instance.get("vm_state") or "").strip()
    task_state = str(instance.get("task_state") or "").strip()
    raw = "/".join(part for part in (status, vm_state, task_state) if part) or "?"
    if str(instance.get("is_suspended") or "0") not in ("0", "false", "False", ""):
        return ServerStatus.STOPPED, raw
    # vm_state is the hypervisor's view and more precise than the billing `status`; an active
    # VM with a task under way (spawning, rebooting) is not ready yet.
    for word in (vm_state, status):
        mapped = STATUS_MAP.get(word.lower())
        if mapped is None:
            continue
        if mapped is ServerStatus.ACTIVE and task_state and task_state.lower() != "none":
            return ServerStatus.PENDING, raw
        return mapped, raw
    return ServerStatus.UNKNOWN, raw


class HostwindsProvider:
    """`VpsProvider` on the Hostwinds Cloud API."""

    name: str = VpsProviderName.HOSTWINDS

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        min_interval: float = 0.5,
        user_data_field: str = "",
        order_ip_action: str = "",
        billing_cycle: str = "monthly",
        transient_messages: Iterable[str] = DEFAULT_TRANSIENT_MESSAGES,
        find_after_create_attempts: int = 5,
        find_after_create_delay: float = 2.0,
        force_ipv4: bool = True,
        attempts: int = 1,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("HostwindsProvider needs an API key (HOSTWIND_API_KEY).")
        self._api_key = api_key
        self.api_url = api_url
        # add_instance documents no user-data field [UNVERIFIED]. When the vendor's field name is
        # confirmed, set HOSTWINDS_USER_DATA_FIELD; until then create_server says
        # user_data_applied=False and the caller configures the server another way.
        self.user_data_field = user_data_field
        # No action to order an extra IPv4 is documented [UNVERIFIED]: HOSTWINDS_ORDER_IP_ACTION
        # turns one on once confirmed; empty means add_secondary_ip raises NotSupported.
        self.order_ip_action = order_ip_action
        self.billing_cycle = billing_cycle
        self.transient_messages = tuple(m.lower() for m in transient_messages)
        self.find_after_create_attempts = find_after_create_attempts
        self.find_after_create_delay = find_after_create_delay
        # PenguinMails self-throttles to 2 requests/second; Hostwinds documents no limit.
        self.min_interval = min_interval
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_call = 0.0
        # Binding to 0.0.0.0 makes every connection leave over IPv4: the allow-list is IPv4-only
        # and a request that happens to go out over IPv6 is refused as "Not Authorized!".
        transport = httpx.HTTPTransport(local_address="0.0.0.0" if force_ipv4 else None)  # noqa: S104
        # One attempt by default: a failed step is retried by the job queue, which also keeps
        # its own record of it. Raising `attempts` retries read actions only (READ_ACTIONS).
        self._http = HttpClient(
            "hostwinds",
            timeout=timeout,
            connect_timeout=min(timeout, 10.0),
            retry=RetryPolicy(attempts=max(1, attempts), backoff=backoff),
            headers={"Accept": "application/json", "User-Agent": "penguinmails/1"},
            secret_fields=("API",),
            # 408 (the vendor's proxy gave up) is as worth retrying as 429 and 5xx.
            retryable=lambda r: r.status_code in (408, 429) or r.status_code >= 500,
            transport=transport,
            sleep=sleep,
        )

    def __repr__(self) -> str:  # never show the key, not even in a traceback's locals
        return f"HostwindsProvider(api_url={self.api_url!r})"

    def close(self) -> None:
        self._http.close()

    # --- transport ---------------------------------------------------------------------------

    def _throttle(self) -> None:
        with self._lock:
            wait = self._last_call + self.min_interval - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            self._last_call = time.monotonic()

    def call(self, action: str, **params: str | Sequence[str]) -> Any:
        """POST one action; returns the `success` payload or the list of success results."""
        form: list[tuple[str, str]] = [("action", action), ("API", self._api_key)]
        for key, value in params.items():
            if isinstance(value, str):
                form.append((key, value))
            else:  # PHP array notation: keys[]=a&keys[]=b
                form.extend((f"{key}[]", item) for item in value)
        self._throttle()
        try:
            response = self._http.request(
                "POST", self.api_url, data=dict(_group(form)), idempotent=action in READ_ACTIONS
            )
        except TransportFailure as exc:
            # The detail names the exception and host only; the key is in the body, and the
            # layer redacts it anyway.
            if exc.timeout:
                raise ProviderError(f"Hostwinds {action}: timed out.", permanent=False) from None
            raise ProviderError(
                f"Hostwinds {action}: connection failed ({exc.detail}).", permanent=False
            ) from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise ProviderError(
                f"Hostwinds {action}: HTTP {response.status_code}.", permanent=False
            )
        if response.status_code >= 400:
            raise ProviderError(f"Hostwinds {action}: HTTP {response.status_code}.", permanent=True)
        try:
            body = response.json()
        except ValueError:
            # An HTML maintenance or proxy page served with 200: worth another try later.
            raise ProviderError(
                f"Hostwinds {action}: answer was not JSON ({response.text[:80]!r}).",
                permanent=False,
            ) from None
        return self._unwrap(action, body)

    def _unwrap(self, action: str, body: Any) -> Any:
        # Accept a list or an object; an error is flagged on the first element.
        first = body[0] if isinstance(body, list) and body else body
        if isinstance(first, dict) and first.get("result") == "error":
            message = str(first.get("message") or "unknown error")
            code = str(first.get("ERROR") or "")
            if first.get("action") == "Authorization":
                raise ProviderError(ALLOW_LIST_HELP, permanent=True, code=code)
            transient = any(word in message.lower() for word in self.transient_messages)
            logger.warning("Hostwinds %s refused: %s (ERROR=%s)", action, message, code or "-")
            raise ProviderError(
                f"Hostwinds {action}: {message}", permanent=not transient, code=code
            )
        if isinstance(body, dict) and "success" in body:
            return body["success"]
        if isinstance(body, list):
            return body
        raise ProviderError(f"Hostwinds {action}: unexpected answer shape.", permanent=False)

    # --- VpsProvider -------------------------------------------------------------------------

    def list_servers(self) -> list[ServerInfo]:
        instances = self.call("get_instances")
        if not isinstance(instances, list):  # an account with no servers may answer otherwise
            return []
        return [self._info(item, ips=None) for item in instances if isinstance(item, dict)]

    def find_server(self, name: str) -> ServerInfo | None:
        for server in self.list_servers():
            if server.name == name and server.status is not ServerStatus.TERMINATED:
                return server
        return None

    def get_server(self, server_id: str) -> ServerInfo:
        try:
            instance = self.call("get_instance", serviceid=server_id)
            ips = self.call("get_instance_ips", serviceid=server_id)
        except ProviderError as exc:
            if _INVALID_SERVICE_ID in exc.message:
                raise ServerNotFound(server_id) from None
            raise
        addresses = ips.get("IP Addresses") if isinstance(ips, dict) else None
        return self._info(instance, ips=_ip_strings(addresses or []))

    def create_server(
        self,
        *,
        name: str,
        plan: str,
        location: str,
        image: str,
        user_data: str = "",
        ssh_keys: Sequence[str] = (),
    ) -> ServerRef:
        existing = self.find_server(name)
        if existing is not None:
            return ServerRef(existing.id, name, created=False, user_data_applied=False)
        params: dict[str, str | Sequence[str]] = {
            "template": image,
            "rid": plan,
            "location_id": location,
            "qty": "1",
            "srvrname": name,
            "billingcycle": self.billing_cycle,
        }
        if ssh_keys:
            params["keys"] = list(ssh_keys)
        applied = bool(user_data and self.user_data_field)
        if applied:
            params[self.user_data_field] = user_data
        self.call("add_instance", **params)
        # The reply carries no serviceid: find the new server by name. It may take a moment to
        # be listed; if it never shows up, a transient error makes the job retry, and the retry
        # finds it by name instead of ordering again.
        for attempt in range(self.find_after_create_attempts):
            found = self.find_server(name)
            if found is not None:
                return ServerRef(found.id, name, created=True, user_data_applied=applied)
            if attempt + 1 < self.find_after_create_attempts:
                self._sleep(self.find_after_create_delay)
        raise ProviderError(
            f"Hostwinds accepted the order for {name!r} but does not list it yet.", permanent=False
        )

    def add_secondary_ip(self, server_id: str) -> str | None:
        if not self.order_ip_action:
            raise NotSupported(
                "The Hostwinds API documents no action to order an extra IPv4. Order it in the "
                "Hostwinds portal; it is discovered through get_instance_ips once attached."
            )
        # [UNVERIFIED] action and reply: we only know it is asynchronous, so the address is
        # discovered later rather than read from the reply.
        self.call(self.order_ip_action, serviceid=server_id)
        return None

    def set_reverse_dns(self, server_id: str, ip: str, hostname: str) -> None:
        # `rdns` is the current parameter; `rdata` is deprecated.
        self.call("set_rdns", serviceid=server_id, ip=ip, rdns=hostname)

    def stop_server(self, server_id: str) -> None:
        # `shutdown` (serviceid): "...has been shut down!" (../shared/reference/external-apis.md).
        self.call("shutdown", serviceid=server_id)

    def start_server(self, server_id: str) -> None:
        self.call("boot", serviceid=server_id)

    def terminate_server(self, server_id: str) -> None:
        try:
            self.call("terminate", serviceid=server_id)
        except ProviderError as exc:
            # Already deleted (a retried step, or staff deleted it in the portal): done.
            if _INVALID_SERVICE_ID in exc.message:
                return
            raise

    def server_resources(self, server_id: str) -> ResourceFigures:
        # The API lists `get_server_charts` (serviceid, period) but documents no response
        # format (../shared/reference/external-apis.md §1.4): nothing to parse safely, so the
        # figures come from node_exporter on the server (docs/infrastructure.md).
        raise NotSupported(
            "Hostwinds documents no response format for get_server_charts: resources are read "
            "from node_exporter on the server."
        )

    # --- helpers -----------------------------------------------------------------------------

    def _info(self, instance: Mapping[str, Any], *, ips: list[str] | None) -> ServerInfo:
        status, raw = normalise_status(instance)
        main_ip = str(instance.get("main_ip") or "") or None
        if ips is None:  # get_instances: `ips` may be an array or null
            ips = _ip_strings(instance.get("ips") or [])
        secondary = tuple(ip for ip in dict.fromkeys(ips) if ip and ip != main_ip)
        details = {
            key: str(instance[key])
            for key in ("product_name", "location_id", "billingcycle", "hostname")
            if instance.get(key) not in (None, "")
        }
        return ServerInfo(
            id=str(instance.get("serviceid") or instance.get("id") or ""),
            name=str(instance.get("srvrname") or ""),
            status=status,
            raw_status=raw,
            main_ip=main_ip,
            secondary_ips=secondary,
            details=details,
        )


def _ip_strings(items: Iterable[Any]) -> list[str]:
    """IP entries may be plain strings or objects [UNVERIFIED shape]: take what looks like one."""
    found: list[str] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            for key in ("ip", "address", "ip_address", "ipaddress"):
                if item.get(key):
                    found.append(str(item[key]))
                    break
    return found


def _group(form: list[tuple[str, str]]) -> list[tuple[str, str | list[str]]]:
    """httpx takes repeated fields as a list value: keys[]=a&keys[]=b."""
    grouped: dict[str, list[str]] = {}
    for key, value in form:
        grouped.setdefault(key, []).append(value)
    return [(k, v[0] if len(v) == 1 else v) for k, v in grouped.items()]
