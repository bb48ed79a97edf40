"""The VPS provider interface: what provisioning needs from Hostwinds (or any host), nothing more.

Every provider implements `VpsProvider`. Errors are `ProviderError(permanent=...)`, in the manner
of healthchecks' `TransportError`: a permanent error (bad key, invalid plan id, IP allow-list
refusal) must not be retried, a transient one (5xx, timeout) may be, by the job queue.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class ServerStatus(enum.StrEnum):
    """A provider's server state, normalised. The provider's own word is kept in `raw_status`."""

    PENDING = "pending"  # ordered, building, booting
    ACTIVE = "active"  # running and reachable
    STOPPED = "stopped"  # shut down or suspended (billing), not serving
    TERMINATED = "terminated"  # deleted at the provider
    ERROR = "error"  # the provider reports a failure (the state machine marks the VPS failed)
    UNKNOWN = "unknown"  # a value we have no mapping for: look at raw_status


@dataclass(frozen=True)
class ServerRef:
    """What `create_server` returns.

    `created` is False when a server with that name already existed (the step ran twice).
    `user_data_applied` is False when the provider could not take cloud-init user data, so the
    caller must configure the server another way (see docs/infrastructure.md).
    """

    id: str
    name: str
    created: bool
    user_data_applied: bool


@dataclass(frozen=True)
class ServerInfo:
    """One server as the provider describes it now."""

    id: str
    name: str
    status: ServerStatus
    raw_status: str
    main_ip: str | None
    secondary_ips: tuple[str, ...] = ()
    # Vendor extras worth recording (plan, location, monthly price when the provider says).
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceFigures:
    """CPU, memory and disk use of one server now: percentages 0-100, None when not known.

    `cpu_busy_seconds`/`cpu_total_seconds` are cumulative counters (node_exporter's
    node_cpu_seconds_total summed over CPUs): a CPU percentage needs two readings, so the
    caller computes it against the previous sample's counters when the source gives none.
    """

    cpu_percent: float | None
    memory_percent: float | None
    disk_percent: float | None
    memory_total_bytes: int | None = None
    disk_total_bytes: int | None = None
    disk_mountpoint: str = ""
    cpu_count: int | None = None
    cpu_busy_seconds: float | None = None
    cpu_total_seconds: float | None = None


class ProviderError(Exception):
    """A provider call failed. `permanent` says whether retrying the same call can help."""

    def __init__(self, message: str, *, permanent: bool, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        # The vendor's own error code, when it sends one: for logs, never for branching.
        self.code = code

    def __str__(self) -> str:
        kind = "permanent" if self.permanent else "transient"
        suffix = f" (code {self.code})" if self.code else ""
        return f"{self.message}{suffix} [{kind}]"


class NotSupported(ProviderError):
    """The provider's API cannot do this (e.g. order an extra IPv4): staff must, in its portal."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class ServerNotFound(ProviderError):
    """No server with that id at the provider (never created, or already terminated)."""

    def __init__(self, server_id: str) -> None:
        super().__init__(f"No server with id {server_id!r} at the provider.", permanent=True)
        self.server_id = server_id


@runtime_checkable
class VpsProvider(Protocol):
    """A VPS host. Methods are synchronous; they run inside job handlers, never in a request."""

    name: str

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
        """Order a server named `name`, or return the existing one with that name.

        The name is the idempotency key: a provisioning step that runs twice (a worker killed
        after the order went out) finds its server instead of buying a second one.
        """
        ...

    def get_server(self, server_id: str) -> ServerInfo:
        """The server now; raises ServerNotFound if the provider has no such server."""
        ...

    def find_server(self, name: str) -> ServerInfo | None:
        """The live (not terminated) server with this exact name, if any."""
        ...

    def list_servers(self) -> list[ServerInfo]: ...

    def add_secondary_ip(self, server_id: str) -> str | None:
        """Order one more IPv4 for the server.

        Returns the address when the provider assigns it at once, None when it was ordered and
        will appear later in `get_server(...).secondary_ips`. Raises NotSupported when the API
        cannot order one: the caller leaves the IP "awaiting order" for staff.
        """
        ...

    def set_reverse_dns(self, server_id: str, ip: str, hostname: str) -> None:
        """Point the PTR record of `ip` (one of the server's addresses) at `hostname`."""
        ...

    def stop_server(self, server_id: str) -> None:
        """Shut the server down (billing suspension): kept with its addresses, nothing deleted.
        Stopping a stopped server succeeds."""
        ...

    def start_server(self, server_id: str) -> None:
        """Boot a stopped server again. Starting a running server succeeds."""
        ...

    def terminate_server(self, server_id: str) -> None:
        """Delete the server. Terminating a server that is already gone succeeds."""
        ...

    def server_resources(self, server_id: str) -> ResourceFigures:
        """CPU, memory and disk use now, when the provider's API reports them. Raises
        NotSupported when it does not: the caller reads node_exporter on the server instead
        (infrastructure.services.resources)."""
        ...
