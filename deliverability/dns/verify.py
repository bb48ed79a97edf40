"""Checking the generated records against what DNS actually answers (dnspython).

Each expected record comes back as ok, missing, wrong (with the value found and what to change)
or unchecked: a timeout or a failing server says nothing about the record, so it is never
reported as missing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from deliverability.dns.records import (
    DnsRecord,
    RecordPurpose,
    merge_spf,
    normalize_name,
)

DEFAULT_TIMEOUT = 3.0
# RFC 7208 §4.6.4: more than 10 mechanisms that need DNS (include, a, mx, ptr, exists, redirect)
# and the receiver returns permerror, which counts as an SPF fail under DMARC.
SPF_MAX_LOOKUPS = 10


class CheckStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    WRONG = "wrong"
    UNCHECKED = "unchecked"  # the DNS could not be asked (timeout, SERVFAIL): try again later


@dataclass(frozen=True)
class RecordCheck:
    """The verdict on one expected record."""

    record: DnsRecord
    status: CheckStatus
    found: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == CheckStatus.OK


@dataclass(frozen=True)
class DmarcPolicy:
    """A parsed DMARC record (RFC 7489 §6.3)."""

    policy: str
    subdomain_policy: str | None
    rua: list[str]
    pct: int
    tags: dict[str, str]


class _Lookup(StrEnum):
    FOUND = "found"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    FAILED = "failed"


@dataclass(frozen=True)
class _Answer:
    outcome: _Lookup
    values: list[str] = field(default_factory=list)
    error: str = ""


# --- resolvers ---------------------------------------------------------------------------------
def parse_nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """`host`, `host:port` or `[v6]:port`."""
    spec = spec.strip()
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
        port = int(port_text)
    ipaddress.ip_address(host)  # dnspython needs addresses, not names
    return dns.nameserver.Do53Nameserver(host, port)


def make_resolver(
    nameservers: Sequence[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> dns.resolver.Resolver:
    """A resolver on the given `host:port` list; with none, the system's (/etc/resolv.conf)."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [parse_nameserver(ns) for ns in nameservers]
    else:
        resolver = dns.resolver.Resolver()
    # No cache: a re-check right after the user fixed a record must ask again.
    resolver.cache = None
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def resolver_from_settings() -> dns.resolver.Resolver:
    from django.conf import settings

    return make_resolver(
        getattr(settings, "DNS_RESOLVERS", []),
        timeout=getattr(settings, "DNS_TIMEOUT", DEFAULT_TIMEOUT),
    )


def _query(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> _Answer:
    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return _Answer(_Lookup.NXDOMAIN)
    except dns.resolver.LifetimeTimeout:
        return _Answer(_Lookup.FAILED, error=f"no answer for {name} {rdtype} in time")
    except dns.resolver.NoNameservers as exc:
        return _Answer(_Lookup.FAILED, error=f"the DNS servers failed for {name}: {exc}")
    except dns.exception.DNSException as exc:
        return _Answer(_Lookup.FAILED, error=f"{type(exc).__name__} for {name}: {exc}")
    want = dns.rdatatype.from_text(rdtype)
    # A CNAME answers a TXT/A question with the chain; keep only the records asked for.
    rrsets = [rrset for rrset in answer.response.answer if rrset.rdtype == want]
    values: list[str] = []
    for rrset in rrsets:
        for rdata in rrset:
            if want == dns.rdatatype.TXT:
                # Several strings of one TXT record are one value (RFC 7208 §3.3, 6376 §3.6.2.2).
                values.append(b"".join(rdata.strings).decode(errors="replace"))
            elif want == dns.rdatatype.MX:
                values.append(f"{rdata.preference} {normalize_name(rdata.exchange.to_text())}")
            elif want in (dns.rdatatype.CNAME, dns.rdatatype.PTR):
                values.append(normalize_name(rdata.target.to_text()))
            else:
                values.append(rdata.to_text())
    return _Answer(_Lookup.FOUND if values else _Lookup.NODATA, values)


# --- parsing -----------------------------------------------------------------------------------
def _tags(value: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if sep:
            tags[key.strip().lower()] = val.strip()
    return tags


def parse_dmarc(value: str) -> DmarcPolicy:
    tags = _tags(value)
    rua = [
        # `mailto:a@b.c!10m`: the optional size limit after `!` is not part of the address.
        uri.strip()[len("mailto:") :].split("!")[0].lower()
        for uri in tags.get("rua", "").split(",")
        if uri.strip().lower().startswith("mailto:")
    ]
    try:
        pct = int(tags.get("pct", "100"))
    except ValueError:
        pct = 100
    return DmarcPolicy(tags.get("p", "").lower(), tags.get("sp"), rua, pct, tags)


def _spf_terms(value: str) -> list[str]:
    return value.split()[1:]


def count_spf_lookups(
    value: str, resolver: dns.resolver.Resolver, *, _seen: set[str] | None = None
) -> tuple[int, list[str]]:
    """DNS lookups an SPF evaluation of `value` costs, following include and redirect."""
    seen = _seen if _seen is not None else set()
    count, notes = 0, []
    for term in _spf_terms(value):
        mech = term.lstrip("+-~?").lower()
        kind = mech.split(":", 1)[0].split("=", 1)[0].split("/", 1)[0]
        if kind not in ("include", "a", "mx", "ptr", "exists", "redirect"):
            continue
        count += 1
        if kind not in ("include", "redirect"):
            continue
        target = normalize_name(mech.split(":" if kind == "include" else "=", 1)[1])
        if target in seen:
            notes.append(f"{target} is included twice (a loop)")
            continue
        seen.add(target)
        answer = _query(resolver, target, "TXT")
        spf = [v for v in answer.values if v.lower().startswith("v=spf1")]
        if answer.outcome == _Lookup.FAILED:
            notes.append(f"could not read {target}'s SPF to count its lookups")
        elif len(spf) == 1:
            nested, nested_notes = count_spf_lookups(spf[0], resolver, _seen=seen)
            count += nested
            notes += nested_notes
        else:
            notes.append(f"{target} has no single SPF record (receivers return permerror)")
    return count, notes


def _spf_covers(value: str, ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    for term in _spf_terms(value):
        if term.startswith(("-", "~", "?")):
            continue
        mech = term.lstrip("+").lower()
        if mech.startswith(("ip4:", "ip6:")):
            try:
                if address in ipaddress.ip_network(mech[4:], strict=False):
                    return True
            except ValueError:
                continue
    return False


# --- checks ------------------------------------------------------------------------------------
def _unchecked(record: DnsRecord, answer: _Answer) -> RecordCheck:
    return RecordCheck(
        record, CheckStatus.UNCHECKED, message=f"Could not check: {answer.error}. Retry later."
    )


def _missing(record: DnsRecord, answer: _Answer, what: str) -> RecordCheck:
    where = "the name does not exist" if answer.outcome == _Lookup.NXDOMAIN else "none found"
    return RecordCheck(
        record,
        CheckStatus.MISSING,
        found=answer.values,
        message=f"No {what} at {record.name} ({where}). Add: {record.zone_line()}",
    )


def check_mx(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    answer = _query(resolver, record.name, "MX")
    if answer.outcome == _Lookup.FAILED:
        return _unchecked(record, answer)
    ours = [v for v in answer.values if v.split()[1] == record.value]
    if not ours:
        return _missing(record, answer, f"MX pointing at {record.value}")
    if f"{record.priority} {record.value}" not in ours:
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            answer.values,
            f"The MX for {record.value} has priority {ours[0].split()[0]}; "
            f"set it to {record.priority}.",
        )
    ahead = [v for v in answer.values if int(v.split()[0]) < (record.priority or 0)]
    message = f"Mail for the domain is delivered first to {ahead[0].split()[1]}." if ahead else ""
    return RecordCheck(record, CheckStatus.OK, answer.values, message)


def check_spf(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    answer = _query(resolver, record.name, "TXT")
    if answer.outcome == _Lookup.FAILED:
        return _unchecked(record, answer)
    spf = [v for v in answer.values if v.lower().startswith("v=spf1")]
    if not spf:
        return _missing(record, answer, "SPF record")
    if len(spf) > 1:
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            spf,
            f"{len(spf)} SPF records found: receivers then fail SPF for every message "
            f"(permerror, RFC 7208 §4.5). Replace them with one: {merge_spf(spf, record.value)}",
        )
    found = spf[0]
    problems = []
    expected_ips = [t[4:] for t in _spf_terms(record.value) if t.startswith("ip4:")]
    missing_ips = [ip for ip in expected_ips if not _spf_covers(found, ip)]
    if missing_ips:
        problems.append(f"it does not authorise {', '.join(missing_ips)}")
    found_terms = {t.lower() for t in _spf_terms(found)}
    missing_includes = [
        t for t in _spf_terms(record.value) if t.startswith("include:") and t not in found_terms
    ]
    if missing_includes:
        problems.append(f"it lacks {' '.join(missing_includes)}")
    if {"+all", "all", "?all"} & found_terms:
        problems.append("it ends in +all/?all, which lets anyone send as the domain")
    lookups, notes = count_spf_lookups(found, resolver)
    if lookups > SPF_MAX_LOOKUPS:
        problems.append(
            f"it needs {lookups} DNS lookups; receivers stop at {SPF_MAX_LOOKUPS} and fail SPF "
            "(replace includes with ip4: entries)"
        )
    if problems:
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            [found],
            f"The SPF record is wrong: {'; '.join(problems)}. "
            f"Change it to: {merge_spf([found], record.value)}",
        )
    return RecordCheck(record, CheckStatus.OK, [found], "; ".join(notes))


def _dkim_key(value: str) -> str:
    return "".join(_tags(value).get("p", "").split())


def check_dkim(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    answer = _query(resolver, record.name, "TXT")
    if answer.outcome == _Lookup.FAILED:
        return _unchecked(record, answer)
    keys = [v for v in answer.values if "p=" in v]
    if not keys:
        return _missing(record, answer, "DKIM key")
    if len(keys) > 1:
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            keys,
            f"{len(keys)} DKIM records at {record.name}: keep only ours: {record.value}",
        )
    found = keys[0]
    tags = _tags(found)
    expected = _dkim_key(record.value)
    if not _dkim_key(found):
        problem = "the key is empty (p= revokes it)"
    elif _dkim_key(found) != expected:
        problem = "the public key differs from the one the mail server signs with"
    elif tags.get("k", "rsa").lower() != "rsa":
        problem = f"k={tags['k']} but the key is RSA"
    elif tags.get("v", "DKIM1") != "DKIM1":
        problem = f"v={tags['v']} must be DKIM1"
    else:
        return RecordCheck(record, CheckStatus.OK, [found])
    return RecordCheck(
        record,
        CheckStatus.WRONG,
        [found],
        f"The DKIM record is wrong: {problem}. Replace its value with: {record.value}",
    )


def check_dmarc(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    answer = _query(resolver, record.name, "TXT")
    if answer.outcome == _Lookup.FAILED:
        return _unchecked(record, answer)
    found = [v for v in answer.values if v.replace(" ", "").upper().startswith("V=DMARC1")]
    if not found:
        return _missing(record, answer, "DMARC record (Gmail and Yahoo require one)")
    if len(found) > 1:
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            found,
            f"{len(found)} DMARC records: receivers then apply none (RFC 7489 §6.6.3). "
            f"Keep one: {record.value}",
        )
    policy = parse_dmarc(found[0])
    expected = parse_dmarc(record.value)
    if policy.policy not in ("none", "quarantine", "reject"):
        problem = f"p={policy.policy or '(absent)'} is not none, quarantine or reject"
    elif missing := [a for a in expected.rua if a not in policy.rua]:
        problem = f"reports do not go to {', '.join(missing)}"
    else:
        message = f"Policy p={policy.policy}" + (
            f" at pct={policy.pct}" if policy.pct < 100 else ""
        )
        return RecordCheck(record, CheckStatus.OK, found, message + ".")
    return RecordCheck(
        record,
        CheckStatus.WRONG,
        found,
        f"The DMARC record is wrong: {problem}. Change it to: {record.value}",
    )


def check_txt_present(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    """An exact TXT value (the DMARC report authorisation)."""
    answer = _query(resolver, record.name, "TXT")
    if answer.outcome == _Lookup.FAILED:
        return _unchecked(record, answer)
    prefix = record.value.replace(" ", "").rstrip(";").lower()
    if any(v.replace(" ", "").lower().startswith(prefix) for v in answer.values):
        return RecordCheck(record, CheckStatus.OK, answer.values)
    return _missing(record, answer, f"TXT {record.value!r}")


def check_cname(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    answer = _query(resolver, record.name, "CNAME")
    if answer.outcome == _Lookup.FAILED:
        return _unchecked(record, answer)
    if answer.outcome == _Lookup.FOUND:
        if answer.values == [record.value]:
            return RecordCheck(record, CheckStatus.OK, answer.values)
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            answer.values,
            f"{record.name} points at {answer.values[0]}; point it at {record.value}.",
        )
    if answer.outcome == _Lookup.NODATA:
        # The name exists with other records: usually an A record, or a Cloudflare-proxied
        # CNAME, which Cloudflare flattens to its own addresses.
        addresses = _query(resolver, record.name, "A").values
        if addresses:
            return RecordCheck(
                record,
                CheckStatus.WRONG,
                addresses,
                f"{record.name} has an A record ({', '.join(addresses)}), not a CNAME: replace "
                f"it with a CNAME to {record.value} (on Cloudflare, set it to 'DNS only').",
            )
    return _missing(record, answer, f"CNAME to {record.value}")


def check_ptr(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    ip = str(dns.reversename.to_address(dns.name.from_text(record.name)))
    answer = _query(resolver, record.name, "PTR")
    if answer.outcome == _Lookup.FAILED:
        return _unchecked(record, answer)
    if answer.outcome != _Lookup.FOUND:
        return RecordCheck(
            record,
            CheckStatus.MISSING,
            message=f"{ip} has no reverse DNS. Set its PTR to {record.value} at the VPS provider.",
        )
    if record.value not in answer.values:
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            answer.values,
            f"The reverse DNS of {ip} is {', '.join(answer.values)}; set it to {record.value}.",
        )
    # Gmail wants forward-confirmed reverse DNS: the PTR name must resolve back to the IP.
    forward = _query(resolver, record.value, "A")
    if forward.outcome == _Lookup.FAILED:
        return _unchecked(record, forward)
    if ip not in forward.values:
        return RecordCheck(
            record,
            CheckStatus.WRONG,
            answer.values,
            f"The reverse DNS of {ip} is right, but {record.value} does not resolve back to it "
            f"(A: {', '.join(forward.values) or 'none'}). Add an A record {record.value} → {ip}.",
        )
    return RecordCheck(record, CheckStatus.OK, answer.values)


_CHECKS = {
    RecordPurpose.MX: check_mx,
    RecordPurpose.SPF: check_spf,
    RecordPurpose.DKIM: check_dkim,
    RecordPurpose.DMARC: check_dmarc,
    RecordPurpose.DMARC_REPORT_AUTH: check_txt_present,
    RecordPurpose.TRACKING: check_cname,
    RecordPurpose.PTR: check_ptr,
}


def verify_record(record: DnsRecord, resolver: dns.resolver.Resolver) -> RecordCheck:
    return _CHECKS[record.purpose](record, resolver)


def verify_records(
    records: Sequence[DnsRecord], *, resolver: dns.resolver.Resolver | None = None
) -> list[RecordCheck]:
    """Check every record; the resolver defaults to settings.DNS_RESOLVERS."""
    resolver = resolver or resolver_from_settings()
    return [verify_record(record, resolver) for record in records]
