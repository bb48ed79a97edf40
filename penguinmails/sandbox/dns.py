"""The sandbox DNS server: an authoritative server on loopback serving the local provider's zones.

`make run` and the tests point dnspython at it (settings.DNS_RESOLVERS), so domain verification
talks real DNS over UDP and TCP without the internet. The zones live in a `ZoneStore`: in memory
for tests, or a JSON file that the local DNS provider (in the web or worker process) writes and
this server (in its own process) re-reads when it changes.

The sandbox stands in for the whole DNS: a name it holds no record for is NXDOMAIN (a real
authoritative server would answer REFUSED outside its zones, which verification would report as
"could not check" instead of "missing").
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dns.reversename
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

from penguinmails.sandbox.filelock import locked

logger = logging.getLogger(__name__)

SUPPORTED_TYPES = ("A", "AAAA", "MX", "TXT", "CNAME", "PTR")
_MAX_CNAME_CHAIN = 8
_TXT_STRING_MAX = 255


@dataclass(frozen=True)
class ZoneRecord:
    """One resource record; names are absolute, lower-case, without the trailing dot. A TXT
    value is the joined text: the server splits it into 255-byte strings on the wire."""

    name: str
    type: str
    value: str
    ttl: int = 300
    priority: int | None = None  # MX preference

    @classmethod
    def make(
        cls, name: str, type: str, value: str, *, ttl: int = 300, priority: int | None = None
    ) -> ZoneRecord:
        rtype = type.upper()
        if rtype not in SUPPORTED_TYPES:
            raise ValueError(f"The sandbox DNS does not serve {type} records.")
        if rtype == "MX" and priority is None:
            raise ValueError("An MX record needs a priority.")
        if rtype in ("MX", "CNAME", "PTR"):
            value = _norm(value)
        return cls(_norm(name), rtype, value, ttl, priority)


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


class ZoneStore:
    """The sandbox's records, in memory or in a JSON file shared between processes.

    Writes are read-modify-write under a lock (a thread lock, plus `flock` on a side file when
    file-backed, since the provider and the server are different processes) and replace the file
    atomically, so the server never reads half a file.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._records: list[ZoneRecord] = []
        self._stamp: tuple[int, int] | None = None

    # --- reading ---------------------------------------------------------------------------
    def records(self) -> list[ZoneRecord]:
        with self._lock:
            if self.path is not None:
                self._reload()
            return list(self._records)

    def lookup(self, name: str, type: str | None = None) -> list[ZoneRecord]:
        name = _norm(name)
        return [
            r for r in self.records() if r.name == name and (type is None or r.type == type.upper())
        ]

    # --- writing ---------------------------------------------------------------------------
    def update(self, change: Callable[[list[ZoneRecord]], list[ZoneRecord]]) -> None:
        """Apply `change` to the current records atomically."""
        with self._lock, self._file_lock():
            if self.path is not None:
                self._reload()
            records = change(list(self._records))
            # Duplicates would be served twice; DNS has sets, not lists.
            self._records = list(dict.fromkeys(records))
            if self.path is not None:
                self._save()

    def add(self, record: ZoneRecord) -> None:
        self.update(lambda records: [*records, record])

    def remove(self, name: str, type: str | None = None, value: str | None = None) -> None:
        name = _norm(name)

        def keep(r: ZoneRecord) -> bool:
            return not (
                r.name == name
                and (type is None or r.type == type.upper())
                and (value is None or r.value == value)
            )

        self.update(lambda records: [r for r in records if keep(r)])

    def clear(self) -> None:
        self.update(lambda records: [])

    # --- file backing ----------------------------------------------------------------------
    def _file_lock(self) -> AbstractContextManager[None]:
        return locked(self.path)

    def _reload(self) -> None:
        assert self.path is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = [], None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        data = json.loads(self.path.read_text() or "{}")
        self._records = [ZoneRecord(**item) for item in data.get("records", [])]
        self._stamp = stamp

    def _save(self) -> None:
        assert self.path is not None
        payload = json.dumps({"records": [asdict(r) for r in self._records]}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, self.path)
        stat = self.path.stat()
        self._stamp = (stat.st_mtime_ns, stat.st_size)


def _rdata(record: ZoneRecord) -> Any:
    if record.type == "A":
        return A(record.value)
    if record.type == "AAAA":
        return AAAA(record.value)
    if record.type == "MX":
        return MX(record.value + ".", record.priority or 0)
    if record.type == "CNAME":
        return CNAME(record.value + ".")
    if record.type == "PTR":
        return PTR(record.value + ".")
    data = record.value.encode()
    return TXT([data[i : i + _TXT_STRING_MAX] for i in range(0, len(data), _TXT_STRING_MAX)])


class StoreResolver(BaseResolver):  # type: ignore[misc]
    """Answers from a ZoneStore: exact names, CNAME chasing, NXDOMAIN vs NODATA."""

    def __init__(self, store: ZoneStore) -> None:
        self.store = store

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        qname = _norm(str(request.q.qname))
        qtype = QTYPE.get(request.q.qtype)
        records = self.store.records()
        name = qname
        for _ in range(_MAX_CNAME_CHAIN):
            here = [r for r in records if r.name == name]
            wanted = [r for r in here if qtype in ("ANY", r.type)]
            cname = [r for r in here if r.type == "CNAME"]
            if not wanted and cname and qtype != "CNAME":
                wanted, name = cname, cname[0].value
                for r in wanted:
                    reply.add_answer(RR(r.name + ".", QTYPE.CNAME, rdata=_rdata(r), ttl=r.ttl))
                continue
            for r in wanted:
                rtype = getattr(QTYPE, r.type)
                reply.add_answer(RR(r.name + ".", rtype, rdata=_rdata(r), ttl=r.ttl))
            if not here and name == qname:
                # An empty non-terminal (`_domainkey.example.com` above a selector) exists with
                # no data: NODATA, not NXDOMAIN (RFC 8020).
                if not any(r.name.endswith("." + name) for r in records):
                    reply.header.rcode = RCODE.NXDOMAIN
            break
        return reply


class _QuietLogger:
    """dnslib prints every query to stdout by default; send errors to logging instead."""

    def log_recv(self, handler: Any, data: bytes) -> None: ...
    def log_send(self, handler: Any, data: bytes) -> None: ...
    def log_request(self, handler: Any, request: Any) -> None: ...
    def log_reply(self, handler: Any, reply: Any) -> None: ...
    def log_truncated(self, handler: Any, reply: Any) -> None: ...
    def log_data(self, dnsobj: Any) -> None: ...

    def log_error(self, handler: Any, e: Exception) -> None:
        logger.warning("sandbox DNS: invalid request from %s: %s", handler.client_address, e)


@dataclass
class SandboxDnsServer:
    """A running sandbox server (UDP and TCP on the same port)."""

    host: str
    port: int
    store: ZoneStore
    _servers: Sequence[DNSServer]

    @property
    def nameserver(self) -> str:
        """`host:port`, the form settings.DNS_RESOLVERS takes."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()


def start_sandbox_dns(
    host: str = "127.0.0.1", port: int = 0, store: ZoneStore | None = None
) -> SandboxDnsServer:
    """Start UDP and TCP servers in background threads. Port 0 picks a free port (tests)."""
    if not _is_loopback(host):
        raise ValueError(f"The sandbox DNS server listens on loopback only, not {host}.")
    store = store if store is not None else ZoneStore()
    resolver = StoreResolver(store)
    for _ in range(20):
        udp = DNSServer(resolver, address=host, port=port, logger=_QuietLogger())
        bound = udp.server.server_address[1]
        try:
            tcp = DNSServer(resolver, address=host, port=bound, tcp=True, logger=_QuietLogger())
        except OSError:
            # The free UDP port is taken on TCP: only possible with port 0; pick another.
            udp.server.server_close()
            if port:
                raise
            continue
        for server in (udp, tcp):
            # A short poll interval: stop() (shutdown) waits for the serving loop to notice.
            threading.Thread(
                target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()
        return SandboxDnsServer(host, bound, store, (udp, tcp))
    raise OSError("Could not find a port free for both UDP and TCP.")


def _is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def run_sandbox_dns(host: str, port: int, path: Path | str) -> None:
    """Serve the JSON zone file at `path` in the foreground until SIGINT/SIGTERM."""
    server = start_sandbox_dns(host, port, ZoneStore(path))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logger.info("sandbox DNS serving %s on %s (UDP and TCP)", path, server.nameserver)
    try:
        stop.wait()
    finally:
        server.stop()


# --- blocklist zones (docs/reputation.md, "The sandbox") ----------------------------------------
# The sandbox stands in for the DNS blocklists too: a name it holds nothing for is NXDOMAIN,
# i.e. "not listed"; a listing is staged as an A record (127.0.0.2, or a refusal such as
# 127.255.255.254) with a TXT reason at the list's query name. Self-contained: the core imports
# no app, so the query names are built here with dnspython as reputation builds them.
BLOCKLIST_LISTED = "127.0.0.2"
BLOCKLIST_REFUSED = "127.255.255.254"  # Spamhaus: "query via a public resolver", not a listing
DEFAULT_IP_BLOCKLIST = "zen.spamhaus.org"
DEFAULT_DOMAIN_BLOCKLIST = "dbl.spamhaus.org"


def blocklist_query_name(subject: str, zone: str) -> str:
    """`<reversed octets|nibbles>.<zone>` for an address, `<domain>.<zone>` for a domain."""
    zone = _norm(zone)
    try:
        address = ipaddress.ip_address(subject.strip())
    except ValueError:
        return f"{_norm(subject)}.{zone}"
    reverse = dns.reversename.from_address(str(address))
    origin = (
        dns.reversename.ipv6_reverse_domain
        if ":" in subject
        else dns.reversename.ipv4_reverse_domain
    )
    return f"{reverse.relativize(origin).to_text()}.{zone}"


def stage_blocklisting(
    store: ZoneStore,
    subject: str,
    *,
    zone: str,
    answer: str = BLOCKLIST_LISTED,
    reason: str | None = None,
    remove: bool = False,
) -> str:
    """List `subject` on `zone` (replacing what was staged there), or with `remove` take it
    off again; returns the query name."""
    name = blocklist_query_name(subject, zone)
    ipaddress.IPv4Address(answer)  # a blocklist answers with an IPv4 code
    text = reason if reason is not None else f"Sandbox listing of {subject} on {zone}"
    wanted = (
        [] if remove else [ZoneRecord.make(name, "A", answer), ZoneRecord.make(name, "TXT", text)]
    )
    store.update(lambda records: [r for r in records if r.name != name] + wanted)
    return name
