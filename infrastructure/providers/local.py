"""The local VPS provider: records only, for `make run`, demos and tests.

Servers are rows in memory, or in a JSON file under .local/ when several processes (web, worker,
beat) must agree; addresses come from 127.0.0.0/8 so anything that connects to them stays on
this machine. It follows the same rules as Hostwinds where they matter to callers: creation is
idempotent by name, a new server is pending for a poll or two before it is active, and the
number of secondary IPs per server is capped.

With `dns_zones` (the sandbox DNS zone file, when the sandbox is the DNS: `make run`), reverse
DNS is also published there, forward-confirmed: `set_reverse_dns(id, ip, host)` writes PTR
ip → host and A host → ip, so any IP given a PTR (now or later) verifies like a real one.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

import dns.reversename

from infrastructure.providers.base import (
    NotSupported,
    ProviderError,
    ResourceFigures,
    ServerInfo,
    ServerNotFound,
    ServerRef,
    ServerStatus,
)
from penguinmails.providers import VpsProviderName
from penguinmails.sandbox.dns import ZoneRecord, ZoneStore

# 127.0.0.1 is where our own sandbox servers listen; hand out addresses above it.
_FIRST_HOST = 10
_LAST_HOST = 254


class _Server(TypedDict):
    id: str
    name: str
    status: str
    polls_left: int
    main_ip: str
    secondary_ips: list[str]
    ptr: dict[str, str]
    plan: str
    location: str
    image: str
    user_data: str


class _State(TypedDict):
    servers: dict[str, _Server]


class LocalProvider:
    """`VpsProvider` that only keeps records."""

    name: str = VpsProviderName.LOCAL

    def __init__(
        self,
        path: Path | None = None,
        *,
        activate_after_polls: int = 1,
        max_secondary_ips: int = 4,
        dns_zones: Path | None = None,
    ) -> None:
        self.path = path
        self.zones = ZoneStore(dns_zones) if dns_zones is not None else None
        self.activate_after_polls = activate_after_polls
        self.max_secondary_ips = max_secondary_ips
        self._memory: _State = {"servers": {}}

    @contextmanager
    def _state(self) -> Iterator[_State]:
        """The state, saved on exit; with a file, under an exclusive lock across processes."""
        if self.path is None:
            yield self._memory
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state: _State
                if self.path.exists():
                    state = json.loads(self.path.read_text())
                else:
                    state = {"servers": {}}
                yield state
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
                os.replace(tmp, self.path)  # atomic: a crash never leaves half a file
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

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
        if not name:
            raise ProviderError("A server needs a name.", permanent=True)
        with self._state() as state:
            for server in state["servers"].values():
                if server["name"] == name and server["status"] != ServerStatus.TERMINATED:
                    return ServerRef(server["id"], name, created=False, user_data_applied=True)
            server_id = uuid.uuid4().hex[:12]
            state["servers"][server_id] = {
                "id": server_id,
                "name": name,
                "status": str(ServerStatus.PENDING),
                "polls_left": self.activate_after_polls,
                "main_ip": _allocate(state),
                "secondary_ips": [],
                "ptr": {},
                "plan": plan,
                "location": location,
                "image": image,
                "user_data": user_data,
            }
        return ServerRef(server_id, name, created=True, user_data_applied=True)

    def get_server(self, server_id: str) -> ServerInfo:
        with self._state() as state:
            server = _live(state, server_id)
            # Pending for a few polls, like a real build, so "waiting for active" is exercised.
            if server["status"] == ServerStatus.PENDING:
                if server["polls_left"] <= 0:
                    server["status"] = str(ServerStatus.ACTIVE)
                else:
                    server["polls_left"] -= 1
            return _info(server)

    def find_server(self, name: str) -> ServerInfo | None:
        for server in self.list_servers():
            if server.name == name and server.status is not ServerStatus.TERMINATED:
                return server
        return None

    def list_servers(self) -> list[ServerInfo]:
        with self._state() as state:
            return [
                _info(s)
                for s in state["servers"].values()
                if s["status"] != ServerStatus.TERMINATED
            ]

    def add_secondary_ip(self, server_id: str) -> str | None:
        with self._state() as state:
            server = _live(state, server_id)
            if len(server["secondary_ips"]) >= self.max_secondary_ips:
                raise ProviderError(
                    f"Server {server_id} already has {self.max_secondary_ips} secondary IPs, "
                    "the most this provider allows.",
                    permanent=True,
                )
            ip = _allocate(state)
            server["secondary_ips"].append(ip)
            return ip

    def set_reverse_dns(self, server_id: str, ip: str, hostname: str) -> None:
        with self._state() as state:
            server = _live(state, server_id)
            if ip != server["main_ip"] and ip not in server["secondary_ips"]:
                raise ProviderError(
                    f"{ip} is not an address of server {server_id}.", permanent=True
                )
            server["ptr"][ip] = hostname
        if self.zones is not None:
            publish_reverse_dns(self.zones, {ip: hostname})

    def reverse_dns(self, ip: str) -> str | None:
        """The PTR name recorded for `ip` (the sandbox DNS server serves these)."""
        with self._state() as state:
            for server in state["servers"].values():
                if server["status"] != ServerStatus.TERMINATED and ip in server["ptr"]:
                    return server["ptr"][ip]
        return None

    def stop_server(self, server_id: str) -> None:
        with self._state() as state:
            _live(state, server_id)["status"] = str(ServerStatus.STOPPED)

    def start_server(self, server_id: str) -> None:
        with self._state() as state:
            server = _live(state, server_id)
            if server["status"] == ServerStatus.STOPPED:
                server["status"] = str(ServerStatus.ACTIVE)

    def terminate_server(self, server_id: str) -> None:
        names: dict[str, str] = {}
        with self._state() as state:
            server = state["servers"].get(server_id)
            if server is not None:
                # Kept as a record (its addresses are not reused, as at a real host).
                server["status"] = str(ServerStatus.TERMINATED)
                names = dict(server["ptr"])
        if self.zones is not None and names:
            unpublish_reverse_dns(self.zones, names)

    def server_resources(self, server_id: str) -> ResourceFigures:
        # A record has no CPU: node_exporter at the server's (loopback) address is read instead,
        # so a node_exporter running on this machine gives `make run` real figures.
        raise NotSupported("The local provider keeps records only: read node_exporter.")


# --- reverse DNS in the sandbox zone ------------------------------------------------------------
def _reverse(ip: str) -> str:
    return dns.reversename.from_address(ip).to_text(omit_final_dot=True)


def _name(hostname: str) -> str:
    return hostname.strip().rstrip(".").lower()


def publish_reverse_dns(zones: ZoneStore, names: Mapping[str, str]) -> None:
    """PTR ip → name and A name → ip for each address, in one update. The PTR replaces any other
    at the address's reverse name (an address has one reverse name); A records are only added
    (a name may have several addresses, and the platform's mail host has them all). Idempotent."""
    wanted = {ip: _name(name) for ip, name in names.items()}
    reverse = {_reverse(ip) for ip in wanted}

    def change(records: list[ZoneRecord]) -> list[ZoneRecord]:
        kept = [r for r in records if not (r.type == "PTR" and r.name in reverse)]
        for ip, name in wanted.items():
            kept += [ZoneRecord.make(_reverse(ip), "PTR", name), ZoneRecord.make(name, "A", ip)]
        return kept

    zones.update(change)


def unpublish_reverse_dns(zones: ZoneStore, names: Mapping[str, str]) -> None:
    """Remove what `publish_reverse_dns` published for these addresses (a terminated server)."""
    gone = {(_reverse(ip), "PTR", _name(name)) for ip, name in names.items()}
    gone |= {(_name(name), "A", ip) for ip, name in names.items()}
    zones.update(lambda records: [r for r in records if (r.name, r.type, r.value) not in gone])


def _live(state: _State, server_id: str) -> _Server:
    server = state["servers"].get(server_id)
    if server is None or server["status"] == ServerStatus.TERMINATED:
        raise ServerNotFound(server_id)
    return server


def _allocate(state: _State) -> str:
    used = {s["main_ip"] for s in state["servers"].values()}
    used.update(ip for s in state["servers"].values() for ip in s["secondary_ips"])
    for host in range(_FIRST_HOST, _LAST_HOST + 1):
        candidate = f"127.0.0.{host}"
        if candidate not in used:
            return candidate
    raise ProviderError("The local provider has no loopback addresses left.", permanent=True)


def _info(server: _Server) -> ServerInfo:
    return ServerInfo(
        id=server["id"],
        name=server["name"],
        status=ServerStatus(server["status"]),
        raw_status=server["status"],
        main_ip=server["main_ip"],
        secondary_ips=tuple(server["secondary_ips"]),
        details={"plan": server["plan"], "location": server["location"]},
    )
