"""The DNS records a sending domain must publish, generated from what the platform knows.

Pure functions: no database, no network. The dashboard shows these ready to copy, the providers
publish them and `verify.py` checks them against what DNS answers.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import dns.exception
import dns.name
import dns.reversename
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DKIM_KEY_BITS = 2048
# RFC 1035 §3.3: a TXT record is a list of <character-string>s of at most 255 octets each. A
# 2048-bit DKIM key (~400 characters) must be split; receivers join the strings without a
# separator (RFC 6376 §3.6.2.2).
TXT_STRING_MAX = 255
DEFAULT_TTL = 3600
MX_PRIORITY = 10


class RecordType(StrEnum):
    A = "A"
    AAAA = "AAAA"
    MX = "MX"
    TXT = "TXT"
    CNAME = "CNAME"
    PTR = "PTR"


class RecordPurpose(StrEnum):
    MX = "mx"
    SPF = "spf"
    DKIM = "dkim"
    DMARC = "dmarc"
    # RFC 7489 §7.1: when rua points at another domain, that domain must say it accepts reports.
    DMARC_REPORT_AUTH = "dmarc_report_auth"
    TRACKING = "tracking"
    PTR = "ptr"


class SpfAll(StrEnum):
    """How the SPF record ends.

    We default to SOFTFAIL (`~all`). Our SPF lists exactly the tenant's IPs, so `-all` is tempting,
    but a hard fail lets a receiver reject at SMTP time before DMARC is evaluated (RFC 7489 §10.1),
    which loses forwarded mail whose DKIM signature would still have passed DMARC. DMARC is the
    enforcement layer (tightened from `p=none` once reports are clean); `~all` plus aligned DKIM
    is what Gmail and Yahoo's sender rules need. Mailu 2.x also recommends `~all`.
    """

    SOFTFAIL = "~all"
    FAIL = "-all"


class DnsRecordError(ValueError):
    """Inputs from which no valid record can be made (a bad domain, IP or key)."""


@dataclass(frozen=True)
class DnsRecord:
    """One record to publish (or, for PTR, to expect): absolute names without a trailing dot."""

    type: RecordType
    name: str
    value: str
    purpose: RecordPurpose
    priority: int | None = None  # MX only
    ttl: int = DEFAULT_TTL
    note: str = ""

    def txt_strings(self) -> list[str]:
        """The value as the character-strings a TXT record carries (split at 255 bytes)."""
        return split_txt(self.value) if self.type == RecordType.TXT else [self.value]

    def relative_name(self, zone: str) -> str:
        """The host label as DNS panels ask for it: `@` for the apex, `_dmarc` under it."""
        zone = normalize_name(zone)
        if self.name == zone:
            return "@"
        if self.name.endswith("." + zone):
            return self.name[: -len(zone) - 1]
        return self.name + "."

    def zone_line(self) -> str:
        """The record in zone-file syntax, for copy and paste."""
        if self.type == RecordType.TXT:
            rdata = " ".join(f'"{part}"' for part in self.txt_strings())
        elif self.type == RecordType.MX:
            rdata = f"{self.priority} {self.value}."
        elif self.type in (RecordType.CNAME, RecordType.PTR):
            rdata = f"{self.value}."
        else:
            rdata = self.value
        return f"{self.name}. {self.ttl} IN {self.type} {rdata}"

    def supersedes(self, existing_type: str, existing_value: str) -> bool:
        """Whether publishing this record replaces an existing one at the same name.

        An apex can hold several TXT records (SPF next to site verifications), so SPF replaces
        only the SPF; at `_dmarc` and `<selector>._domainkey` a second record would make the
        result ambiguous (receivers ignore both), so ours replaces everything of that type.
        """
        if existing_type.upper() != self.type:
            return False
        if self.purpose == RecordPurpose.SPF:
            return existing_value.strip('"').lower().startswith("v=spf1")
        if self.purpose == RecordPurpose.MX:
            return normalize_name(existing_value) == self.value
        return True


@dataclass(frozen=True)
class DkimKeyPair:
    """A DKIM key: the PEM private key stays on the mail server, the public part goes to DNS."""

    private_key_pem: str
    public_key_b64: str  # base64 SubjectPublicKeyInfo DER: the `p=` tag

    @property
    def txt_value(self) -> str:
        return dkim_txt_value(self.public_key_b64)


@dataclass(frozen=True)
class DomainDnsSpec:
    """What the records of one sending domain are generated from."""

    domain: str
    mail_host: str  # the MX; also the PTR target of a sending IP missing from `ptr_names`
    sending_ips: Sequence[str]
    dkim_selector: str
    dkim_public_key: str  # base64 DER, as in `p=`
    dmarc_rua: str  # address that receives aggregate reports
    tracking_host: str | None = None  # e.g. track.example.com, CNAMEd to tracking_target
    tracking_target: str | None = None
    spf_includes: Sequence[str] = field(default_factory=tuple)  # e.g. _spf.google.com
    spf_all: SpfAll = SpfAll.SOFTFAIL
    ttl: int = DEFAULT_TTL
    # Each sending IP's reverse name: the mail server that sends from it (its EHLO name), as
    # infrastructure set it at the VPS provider. Forward-confirmed: that name resolves to the IP.
    ptr_names: Mapping[str, str] = field(default_factory=dict)


def normalize_name(name: str) -> str:
    """Lower-case, no trailing dot, IDNA-encoded; raises DnsRecordError if not a valid name."""
    cleaned = name.strip().rstrip(".").lower()
    if not cleaned:
        raise DnsRecordError("A DNS name is required.")
    try:
        return dns.name.from_text(cleaned).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise DnsRecordError(f"{name!r} is not a valid DNS name: {exc}") from exc


def split_txt(value: str, size: int = TXT_STRING_MAX) -> list[str]:
    """Split a TXT value into character-strings of at most `size` bytes."""
    data = value.encode()
    if not data:
        return [""]
    return [data[i : i + size].decode() for i in range(0, len(data), size)]


def generate_dkim_keypair(bits: int = DKIM_KEY_BITS) -> DkimKeyPair:
    """A fresh RSA key pair for DKIM (2048 bits: Gmail's recommendation, Mailu's default)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKeyPair(private_pem, base64.b64encode(public_der).decode())


def dkim_key_bits(public_key_b64: str) -> int:
    """The size of a DKIM public key (`p=` value); raises DnsRecordError if it is not RSA."""
    try:
        key = serialization.load_der_public_key(base64.b64decode("".join(public_key_b64.split())))
    except ValueError as exc:
        raise DnsRecordError(f"The DKIM public key is not valid base64 DER: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise DnsRecordError("The DKIM public key is not an RSA key.")
    return key.key_size


def dkim_txt_value(public_key_b64: str) -> str:
    bits = dkim_key_bits(public_key_b64)
    if bits < DKIM_KEY_BITS:
        raise DnsRecordError(f"The DKIM key has {bits} bits; {DKIM_KEY_BITS} are required.")
    return f"v=DKIM1; k=rsa; p={''.join(public_key_b64.split())}"


def build_spf(
    ips: Sequence[str], *, includes: Sequence[str] = (), all_: SpfAll = SpfAll.SOFTFAIL
) -> str:
    """`v=spf1 ip4:… include:… ~all`. ip4 costs no DNS lookup; each include costs at least one."""
    if not ips and not includes:
        raise DnsRecordError("SPF needs at least one sending IP or include.")
    parts = ["v=spf1"]
    parts += [f"ip4:{ip}" for ip in ips]
    parts += [f"include:{normalize_name(host)}" for host in includes]
    parts.append(str(all_))
    return " ".join(parts)


def merge_spf(existing: Sequence[str], expected: str) -> str:
    """One SPF record that keeps what the domain already authorises and adds what we need.

    Used when the domain already has SPF (say for Google Workspace): publishing a second record
    would break both, so the user is told the merged value instead.
    """
    terms: list[str] = []
    for value in [*existing, expected]:
        for term in value.split()[1:]:
            if term.lower().lstrip("+-~?") == "all" or term.lower().startswith("redirect="):
                continue
            if term.lower() not in (t.lower() for t in terms):
                terms.append(term)
    ending = expected.split()[-1]
    return " ".join(["v=spf1", *terms, ending])


def build_dmarc(rua: str, *, policy: str = "none") -> str:
    # p=none first: it collects reports without affecting delivery; tightening to quarantine or
    # reject is a later, deliberate step once the reports show every source aligned.
    if "@" not in rua:
        raise DnsRecordError(f"{rua!r} is not an email address for DMARC reports.")
    return f"v=DMARC1; p={policy}; rua=mailto:{rua}"


def reverse_name(ip: str) -> str:
    return dns.reversename.from_address(ip).to_text(omit_final_dot=True)


def _ipv4(ip: str) -> str:
    try:
        return str(ipaddress.IPv4Address(ip.strip()))
    except ValueError as exc:
        raise DnsRecordError(f"{ip!r} is not an IPv4 address.") from exc


def generate_domain_records(spec: DomainDnsSpec) -> list[DnsRecord]:
    """Every record the domain needs, in the order a person would add them."""
    domain = normalize_name(spec.domain)
    mail_host = normalize_name(spec.mail_host)
    selector = spec.dkim_selector.strip().lower()
    if not selector or "." in selector.strip("."):
        raise DnsRecordError(f"{spec.dkim_selector!r} is not a DKIM selector.")
    ips = list(dict.fromkeys(_ipv4(ip) for ip in spec.sending_ips))
    ttl = spec.ttl
    records = [
        DnsRecord(
            RecordType.MX,
            domain,
            mail_host,
            RecordPurpose.MX,
            priority=MX_PRIORITY,
            ttl=ttl,
            note="Bounces and replies reach the mail server.",
        ),
        DnsRecord(
            RecordType.TXT,
            domain,
            build_spf(ips, includes=spec.spf_includes, all_=spec.spf_all),
            RecordPurpose.SPF,
            ttl=ttl,
            note="Authorises the sending IPs. Only one SPF record may exist: merge, don't add.",
        ),
        DnsRecord(
            RecordType.TXT,
            f"{selector}._domainkey.{domain}",
            dkim_txt_value(spec.dkim_public_key),
            RecordPurpose.DKIM,
            ttl=ttl,
            note="The public key receivers check our DKIM signatures with.",
        ),
        DnsRecord(
            RecordType.TXT,
            f"_dmarc.{domain}",
            build_dmarc(spec.dmarc_rua),
            RecordPurpose.DMARC,
            ttl=ttl,
            note="Required by Gmail and Yahoo for bulk senders; p=none only collects reports.",
        ),
    ]
    rua_domain = normalize_name(spec.dmarc_rua.rsplit("@", 1)[1])
    if rua_domain != domain and not rua_domain.endswith("." + domain):
        records.append(
            DnsRecord(
                RecordType.TXT,
                f"{domain}._report._dmarc.{rua_domain}",
                "v=DMARC1;",
                RecordPurpose.DMARC_REPORT_AUTH,
                ttl=ttl,
                note=f"Published in {rua_domain}'s zone (by the platform): accepts the reports.",
            )
        )
    if spec.tracking_host:
        if not spec.tracking_target:
            raise DnsRecordError("A tracking host needs a tracking target to point at.")
        records.append(
            DnsRecord(
                RecordType.CNAME,
                normalize_name(spec.tracking_host),
                normalize_name(spec.tracking_target),
                RecordPurpose.TRACKING,
                ttl=ttl,
                note="Open and click links use the domain's own host name.",
            )
        )
    names = {_ipv4(ip): normalize_name(name) for ip, name in spec.ptr_names.items()}
    for ip in ips:
        host = names.get(ip, mail_host)
        records.append(
            DnsRecord(
                RecordType.PTR,
                reverse_name(ip),
                host,
                RecordPurpose.PTR,
                ttl=ttl,
                note=f"Reverse DNS of {ip}, set at the VPS provider: the mail server sending from "
                f"it ({host}, its EHLO name), which must resolve back to {ip}.",
            )
        )
    return records
