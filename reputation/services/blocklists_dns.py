"""DNS blocklist queries (dnspython), many at once over one UDP socket.

A blocklist check is thousands of tiny independent A queries to one resolver. Instead of a
resolver call per query (a socket, a timer and a blocking wait each), the queries are built and
parsed by dnspython and pipelined over one connected UDP socket: up to `window` in flight,
answers matched by message id and question, each unanswered query resent once, then reported
unknown. bench/blocklist.py measures it against a plain dnspython loop (bench/RESULTS.md).

Verdicts (docs/reputation.md, "Answers"):
- an A answer in 127.0.0.0/8 other than 127.0.0.1: listed (the codes are kept; a TXT query then
  asks for the list's reason);
- NXDOMAIN, or no A record: clean;
- 127.255.255.0/24 (Spamhaus: .252 bad zone, .254 query came through a public resolver, .255
  too many queries), 127.0.1.255 (DBL: an IP asked of a domain list) and 127.0.0.1 (URIBL's
  "your resolver is blocked"): refused, never a listing;
- a timeout, SERVFAIL, REFUSED or an answer outside 127/8: unknown, checked again later.
"""

from __future__ import annotations

import ipaddress
import secrets
import selectors
import socket
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename

REFUSED_NET = ipaddress.ip_network("127.255.255.0/24")
LISTING_NET = ipaddress.ip_network("127.0.0.0/8")
# Not listings although inside 127/8: RFC 5782's never-listed test point, which URIBL answers
# to blocked resolvers, and the DBL's "an IP was asked of a domain list".
REFUSED_CODES = frozenset({ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("127.0.1.255")})


class Verdict(StrEnum):
    LISTED = "listed"
    CLEAN = "clean"
    REFUSED = "refused"  # the list would not answer us (public resolver, quota, bad zone)
    UNKNOWN = "unknown"  # no usable answer (timeout, server failure): checked again later


@dataclass(frozen=True)
class Answer:
    """One list's verdict on one subject."""

    subject: str
    zone: str
    verdict: Verdict
    codes: tuple[str, ...] = ()
    reason: str = ""  # the list's TXT, when listed
    detail: str = ""  # why refused or unknown


class BadSubject(ValueError):
    """Neither an IP address nor a domain name."""


def subject_kind(subject: str) -> str:
    """ "ip" or "domain" for a subject; BadSubject for anything else."""
    try:
        ipaddress.ip_address(subject)
        return "ip"
    except ValueError:
        pass
    try:
        name = dns.name.from_text(subject.strip().rstrip("."))
    except dns.exception.DNSException as exc:
        raise BadSubject(f"{subject!r} is neither an IP address nor a domain name.") from exc
    labels = [label for label in name.labels if label]
    if len(labels) < 2 or not all(_is_hostname_label(label) for label in labels):
        raise BadSubject(f"{subject!r} is neither an IP address nor a domain name.")
    return "domain"


def _is_hostname_label(label: bytes) -> bool:
    text = label.decode("ascii", errors="replace")
    return (
        0 < len(text) <= 63
        and not text.startswith("-")
        and not text.endswith("-")
        and all(c.isalnum() or c == "-" for c in text)
    )


def query_name(subject: str, zone: str) -> str:
    """`<reversed octets>.<zone>` for IPv4, the 32 reversed nibbles for IPv6 (RFC 5782), and
    `<domain>.<zone>` for a domain."""
    zone = zone.strip().strip(".").lower()
    try:
        reverse = dns.reversename.from_address(subject)
    except (ValueError, dns.exception.SyntaxError):
        return f"{subject.strip().rstrip('.').lower()}.{zone}"
    origin = (
        dns.reversename.ipv6_reverse_domain
        if ":" in subject
        else dns.reversename.ipv4_reverse_domain
    )
    return f"{reverse.relativize(origin).to_text()}.{zone}"


def parse_resolver(spec: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` (an address: dnspython asks addresses, not names).
    Empty: the first nameserver of the system's /etc/resolv.conf."""
    spec = spec.strip()
    if not spec:
        system = dns.resolver.Resolver()
        return str(system.nameservers[0]), int(system.port)
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
        port = int(port_text)
    ipaddress.ip_address(host)
    return host, port


def classify(
    response: dns.message.Message | None, *, error: str = ""
) -> tuple[Verdict, tuple[str, ...], str]:
    """(verdict, codes, detail) of one A response; None is a timeout."""
    if response is None:
        return Verdict.UNKNOWN, (), error or "no answer in time"
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Verdict.CLEAN, (), ""
    if rcode != dns.rcode.NOERROR:
        return Verdict.UNKNOWN, (), f"the resolver answered {dns.rcode.to_text(rcode)}"
    codes = sorted(
        {
            ipaddress.ip_address(rdata.address)
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.A
            for rdata in rrset
        }
    )
    texts = tuple(str(code) for code in codes)
    if not codes:
        return Verdict.CLEAN, (), ""
    if any(code in REFUSED_NET or code in REFUSED_CODES for code in codes):
        return Verdict.REFUSED, texts, "the list refused the query (" + ", ".join(texts) + ")"
    if all(code in LISTING_NET for code in codes):
        return Verdict.LISTED, texts, ""
    return Verdict.UNKNOWN, texts, "an answer outside 127.0.0.0/8: not a blocklist answer"


class Pipeline:
    """Many queries to one server over one connected UDP socket (see the module docstring)."""

    def __init__(
        self, server: tuple[str, int], *, timeout: float = 2.0, window: int = 8, tries: int = 2
    ) -> None:
        self.server = server
        self.timeout = timeout
        self.window = max(1, window)
        self.tries = max(1, tries)

    def exchange(
        self, names: Sequence[str], rdtype: str = "A"
    ) -> dict[str, dns.message.Message | None]:
        """The response to each name (None: none in time after `tries` sends)."""
        family = socket.AF_INET6 if ":" in self.server[0] else socket.AF_INET
        results: dict[str, dns.message.Message | None] = {}
        with socket.socket(family, socket.SOCK_DGRAM) as sock, selectors.DefaultSelector() as sel:
            sock.connect(self.server)  # connected: datagrams from anyone else are dropped
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
            self._run(sock, sel, deque(dict.fromkeys(names)), rdtype, results)
        return results

    def _run(
        self,
        sock: socket.socket,
        sel: selectors.BaseSelector,
        todo: deque[str],
        rdtype: str,
        results: dict[str, dns.message.Message | None],
    ) -> None:
        # id -> (name, query, deadline, sends so far)
        pending: dict[int, tuple[str, dns.message.Message, float, int]] = {}
        next_id = secrets.randbelow(65536)
        while todo or pending:
            while todo and len(pending) < self.window:
                name = todo.popleft()
                while next_id in pending:
                    next_id = (next_id + 1) % 65536
                query = dns.message.make_query(name, rdtype)
                query.id = next_id
                next_id = (next_id + 1) % 65536
                self._send(sock, query)
                pending[query.id] = (name, query, time.monotonic() + self.timeout, 1)
            soonest = min(deadline for _, _, deadline, _ in pending.values())
            if sel.select(max(0.0, soonest - time.monotonic())):
                self._receive(sock, pending, results)
            self._expire(sock, pending, results)

    @staticmethod
    def _send(sock: socket.socket, query: dns.message.Message) -> None:
        try:
            sock.send(query.to_wire())
        except (BlockingIOError, ConnectionRefusedError):
            pass  # a full buffer or an ICMP refusal: the query times out and is resent

    def _receive(
        self,
        sock: socket.socket,
        pending: dict[int, tuple[str, dns.message.Message, float, int]],
        results: dict[str, dns.message.Message | None],
    ) -> None:
        while True:
            try:
                wire = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue  # ICMP port unreachable for an earlier datagram
            try:
                response = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            entry = pending.get(response.id)
            if entry is None or not entry[1].is_response(response):
                continue  # late duplicate, or not an answer to this question
            del pending[response.id]
            results[entry[0]] = response

    def _expire(
        self,
        sock: socket.socket,
        pending: dict[int, tuple[str, dns.message.Message, float, int]],
        results: dict[str, dns.message.Message | None],
    ) -> None:
        now = time.monotonic()
        for qid, (name, query, deadline, sent) in list(pending.items()):
            if deadline > now:
                continue
            if sent < self.tries:
                self._send(sock, query)
                pending[qid] = (name, query, now + self.timeout, sent + 1)
            else:
                del pending[qid]
                results[name] = None


def lookup(
    subjects: Iterable[str],
    zones: Sequence[str],
    *,
    server: tuple[str, int],
    timeout: float = 2.0,
    window: int = 8,
    with_reasons: bool = True,
) -> list[Answer]:
    """Every subject against every zone: one Answer per pair, in subject then zone order. The
    TXT reasons of the listed ones are asked in a second, small round."""
    pipeline = Pipeline(server, timeout=timeout, window=window)
    pairs = [(subject, zone, query_name(subject, zone)) for subject in subjects for zone in zones]
    responses = pipeline.exchange([name for _, _, name in pairs], "A")
    answers = []
    for subject, zone, name in pairs:
        verdict, codes, detail = classify(responses.get(name))
        answers.append(Answer(subject, zone, verdict, codes, "", detail))
    listed = [name for (_, _, name), a in zip(pairs, answers, strict=True) if a.verdict == "listed"]
    if not (with_reasons and listed):
        return answers
    texts = pipeline.exchange(listed, "TXT")
    return [
        _with_reason(answer, texts.get(name)) if answer.verdict == Verdict.LISTED else answer
        for (_, _, name), answer in zip(pairs, answers, strict=True)
    ]


def _with_reason(answer: Answer, response: dns.message.Message | None) -> Answer:
    if response is None or response.rcode() != dns.rcode.NOERROR:
        return answer
    reasons = [
        b"".join(rdata.strings).decode(errors="replace")
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.TXT
        for rdata in rrset
    ]
    return Answer(answer.subject, answer.zone, answer.verdict, answer.codes, " ".join(reasons))
