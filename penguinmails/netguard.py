"""The outbound connection guard: every host or URL a user gives us is vetted here before we
connect to it, so a tenant cannot point the platform at its own internal network (server-side
request forgery: Redis and PostgreSQL on loopback, the cloud metadata service at 169.254.169.254,
the private network behind the load balancer).

Two steps, kept apart on purpose:

1. `resolve_public(host, port, ports=...)` (or `check_url(url)`) resolves the name (through
   `DNS_RESOLVERS` when set, as domain verification does, else the system resolver), refuses it
   unless *every* address is public and the port is one the caller allows, and returns a `Target`
   holding the vetted addresses. Called when the user saves the setting (a form error) and again
   just before each connection (a name may resolve differently later: DNS rebinding).
2. `connect(target)` opens the TCP connection to those vetted addresses, never to the name: no
   second resolution can swap a public address for a private one in between. TLS still verifies
   the certificate against the *name* (the caller passes it as SNI/server_hostname).

Refusals say what is allowed and nothing about what is there: the guard decides before any packet
is sent, so "refused" never depends on whether something listens.

`NETGUARD_ALLOW_LOOPBACK` (dev and tests, where the sandbox servers live on 127.0.0.1) lets
loopback through on any port except `NETGUARD_LOOPBACK_DENIED_PORTS` (the platform's own
services); private, link-local, metadata, multicast and reserved addresses are refused even then.
This module imports no app (see docs/mailboxes.md, "The outbound connection guard").
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import dns.exception
import dns.nameserver
import dns.resolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused always, whatever ipaddress thinks of them (is_global is the backstop for the rest).
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",  # loopback (let through only by NETGUARD_ALLOW_LOOPBACK)
        "169.254.0.0/16",  # link-local, incl. the 169.254.169.254 metadata service
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "fc00::/7",  # unique local (ULA)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
        "2001::/32",  # Teredo: tunnels to an IPv4 address we cannot vet
        "fd00:ec2::254/128",  # AWS metadata over IPv6 (inside fc00::/7, named for the reader)
    )
)
# IPv6 forms that carry an IPv4 address: the embedded one is what gets reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")

# Special-use names no public resolver answers (RFC 6761, 6762, 7686): refused without asking.
NEVER_RESOLVED = frozenset({"invalid", "local", "onion", "internal", "home", "lan"})

DEFAULT_LOOPBACK_DENIED_PORTS = (22, 53, 111, 3306, 5432, 6379, 11211, 27017)


class Reason(StrEnum):
    ADDRESS = "address"  # resolves to (or is) an address we do not connect to
    PORT = "port"  # a port outside the allowed set
    UNRESOLVED = "unresolved"  # no such name, or no address records
    DNS_FAILED = "dns_failed"  # the resolvers did not answer
    INVALID = "invalid"  # not a host name or URL at all


# Public wording: what is allowed, never what was found there.
MESSAGES = {
    Reason.ADDRESS: "This host is not allowed: use a server with a public internet address.",
    Reason.UNRESOLVED: "This host is not allowed: use a server with a public internet address.",
    Reason.DNS_FAILED: "This host name could not be resolved just now; try again.",
    Reason.INVALID: "Enter a host name or a public IP address.",
}


class Refused(Exception):
    """The guard refused a host, port or URL. `message` is safe to show to the user."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Target:
    """A vetted destination: connect to `addresses` (in order) on `port`; use `host` for TLS
    (SNI and certificate checks) and the HTTP Host header."""

    host: str
    port: int
    addresses: tuple[str, ...]


# --- settings ----------------------------------------------------------------------------------
def _setting(name: str, default: Any) -> Any:
    from django.conf import settings

    return getattr(settings, name, default)


def loopback_allowed() -> bool:
    return bool(_setting("NETGUARD_ALLOW_LOOPBACK", False))


def smtp_ports() -> frozenset[int]:
    return frozenset(int(p) for p in _setting("NETGUARD_SMTP_PORTS", (25, 465, 587, 2525)))


def imap_ports() -> frozenset[int]:
    return frozenset(int(p) for p in _setting("NETGUARD_IMAP_PORTS", (143, 993)))


def _loopback_denied_ports() -> frozenset[int]:
    ports = _setting("NETGUARD_LOOPBACK_DENIED_PORTS", DEFAULT_LOOPBACK_DENIED_PORTS)
    return frozenset(int(p) for p in ports)


# --- addresses ---------------------------------------------------------------------------------
def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_loopback(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return inner.is_loopback
    return ip.is_loopback


def address_allowed(ip: IPAddress, *, allow_loopback: bool = False) -> bool:
    """Whether we may connect to `ip`: public unicast only (loopback when allowed)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_allowed(inner, allow_loopback=allow_loopback)
    if ip.is_loopback:
        return allow_loopback
    if any(ip.version == net.version and ip in net for net in BLOCKED_NETWORKS):
        return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local
    )


# --- resolution --------------------------------------------------------------------------------
def _nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """`host`, `host:port` or `[v6]:port`, as DNS_RESOLVERS takes them."""
    spec = spec.strip()
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
        port = int(port_text)
    return dns.nameserver.Do53Nameserver(host, port)


def _resolver(nameservers: Sequence[str]) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [_nameserver(ns) for ns in nameservers]
    resolver.cache = None  # each check asks again: that is the point of checking twice
    timeout = float(_setting("DNS_TIMEOUT", 3))
    resolver.timeout = resolver.lifetime = timeout
    return resolver


def _ask_dns(name: str, nameservers: Sequence[str]) -> list[str]:
    resolver = _resolver(nameservers)
    found: list[str] = []
    for rdtype in ("A", "AAAA"):  # IPv4 first: the sandbox and most mail hosts have it
        try:
            answer = resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise Refused(Reason.UNRESOLVED, MESSAGES[Reason.UNRESOLVED]) from None
        except dns.exception.DNSException:
            if found:
                break  # the IPv4 answer stands; a failing AAAA query is no reason to wait again
            raise Refused(Reason.DNS_FAILED, MESSAGES[Reason.DNS_FAILED]) from None
        found += [rdata.to_text() for rdata in answer.rrset or ()]
    if not found:
        raise Refused(Reason.UNRESOLVED, MESSAGES[Reason.UNRESOLVED])
    return found


def _ask_system(name: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise Refused(Reason.DNS_FAILED, MESSAGES[Reason.DNS_FAILED]) from None
        raise Refused(Reason.UNRESOLVED, MESSAGES[Reason.UNRESOLVED]) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _normalise(host: str) -> str:
    host = (host or "").strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".")
    if not host or len(host) > 253 or any(c.isspace() or c in "/?#@\\" for c in host):
        raise Refused(Reason.INVALID, MESSAGES[Reason.INVALID])
    return host


def resolve(host: str, port: int = 0) -> tuple[str, list[IPAddress]]:
    """The normalised host and all its addresses, unvetted (resolve_public vets them)."""
    name = _normalise(host)
    try:
        return name, [ipaddress.ip_address(name.split("%", 1)[0])]
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: always loopback, never asked of DNS.
        return name, [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    if name.rpartition(".")[2] in NEVER_RESOLVED:
        raise Refused(Reason.UNRESOLVED, MESSAGES[Reason.UNRESOLVED])
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused(Reason.INVALID, MESSAGES[Reason.INVALID]) from None
    nameservers = list(_setting("DNS_RESOLVERS", []) or [])
    texts = _ask_dns(ascii_name, nameservers) if nameservers else _ask_system(ascii_name, port)
    return name, [ipaddress.ip_address(text.split("%", 1)[0]) for text in texts]


def port_message(ports: Collection[int]) -> str:
    listed = sorted(ports)
    if len(listed) == 1:
        return f"This port is not allowed: use port {listed[0]}."
    shown = ", ".join(str(p) for p in listed[:-1]) + f" or {listed[-1]}"
    return f"This port is not allowed: use port {shown}."


def resolve_public(host: str, port: int, *, ports: Collection[int]) -> Target:
    """Vet `host:port`: every address public (or loopback when NETGUARD_ALLOW_LOOPBACK), the
    port in `ports` (loopback, when allowed: any port but NETGUARD_LOOPBACK_DENIED_PORTS).
    Raises Refused; the same refusal whatever listens there, as nothing is contacted."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise Refused(Reason.PORT, port_message(ports))
    name, addresses = resolve(host, port)
    allow_loopback = loopback_allowed()
    if not addresses or not all(
        address_allowed(ip, allow_loopback=allow_loopback) for ip in addresses
    ):
        raise Refused(Reason.ADDRESS, MESSAGES[Reason.ADDRESS])
    if all(is_loopback(ip) for ip in addresses):
        # Only reachable with NETGUARD_ALLOW_LOOPBACK: the sandbox on its random test ports.
        if port in _loopback_denied_ports():
            raise Refused(Reason.PORT, port_message(ports))
    elif port not in ports:
        raise Refused(Reason.PORT, port_message(ports))
    return Target(name, port, tuple(str(ip) for ip in addresses))


DEFAULT_URL_PORTS = {"https": 443, "http": 80}


def check_url(
    url: str, *, schemes: Collection[str] = ("https",), ports: Collection[int] | None = None
) -> Target:
    """Vet a user-given URL (webhooks, tracking hosts): scheme in `schemes`, no credentials in
    it, host vetted by resolve_public on its port (default: the scheme's). Connect with
    `connect(target)` and send `Host: target.host` (TLS: server_hostname=target.host)."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        raise Refused(Reason.INVALID, "Enter a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in sorted(schemes))
        raise Refused(Reason.INVALID, f"Enter a URL starting with {allowed}.")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise Refused(Reason.INVALID, "Enter a valid URL (a host name, no user or password).")
    allowed_ports = set(ports) if ports is not None else {DEFAULT_URL_PORTS[scheme]}
    return resolve_public(parts.hostname, port or DEFAULT_URL_PORTS[scheme], ports=allowed_ports)


def connect(target: Target, *, timeout: float | None) -> socket.socket:
    """A TCP connection to the first vetted address that answers (never the name: no second
    resolution). Raises the last OSError when none does."""
    last: OSError | None = None
    for address in target.addresses:
        try:
            # An address literal: getaddrinfo inside create_connection asks no resolver.
            return socket.create_connection((address, target.port), timeout=timeout)
        except OSError as exc:
            last = exc
    raise last or OSError(f"{target.host} has no address")
