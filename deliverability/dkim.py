"""DKIM signing of outgoing mail with the key the platform publishes (docs/dns.md, "DKIM
signing").

`add_domain` generates each sending domain's key pair and publishes the public half at
`<selector>._domainkey.<domain>`; the private half is stored encrypted on the SendingDomain. Mailu
never signs our mail (infrastructure/cloudinit.py turns its signing off), so the platform signs
every message from a domain whose key it holds, in the send path (campaigns.sending.compose).

dkimpy does the DKIM work: header selection, relaxed canonicalisation, the body hash, the tag
list and its folding, and (in tests) verification. Only the RSA step goes through `cryptography`
(OpenSSL) with a key parsed once per domain and process: dkimpy's own RSA is pure Python,
~6.5 ms a signature on the build machine against ~0.3 ms, and `dkim.sign` parses the PEM on
every call.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from django.db import connection
from dkim.canonicalization import CanonicalizationPolicy

from deliverability.models import SendingDomain
from penguinmails.crypto import SecretUnavailable

logger = logging.getLogger(__name__)

# What RFC 6376 §5.4.1 recommends we sign, plus the one-click unsubscribe pair (RFC 8058 §4 asks
# the signature to cover both) and List-Id. A name listed but absent signs "no such header", so
# one cannot be added later. From is listed twice (over-signed): a second From added in transit
# breaks the signature instead of being shown to the reader.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)
_CANON = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_NAME = b"DKIM-Signature"


class DkimKeyError(ValueError):
    """A stored private key that cannot sign (not PEM, not RSA)."""


@dataclass(frozen=True)
class DkimKey:
    """A parsed signing key: `d=` domain, `s=` selector and the RSA private key."""

    domain: str
    selector: str
    private_key: rsa.RSAPrivateKey


def load_key(domain: str, selector: str, private_pem: str) -> DkimKey:
    try:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise DkimKeyError(f"The DKIM key of {domain} is not a PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimKeyError(f"The DKIM key of {domain} is not an RSA key.")
    return DkimKey(domain.lower(), selector.lower(), key)


def signature_header(message: bytes, key: DkimKey, *, now: float | None = None) -> bytes:
    """The `DKIM-Signature: ...` field (CRLF-terminated) for `message` (CRLF line ends):
    rsa-sha256, relaxed/relaxed, the SIGNED_HEADERS. Put it in front of the message."""
    headers, body = _parse(message)
    body_hash = base64.b64encode(hashlib.sha256(_CANON.canonicalize_body(body)).digest())
    fields = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", b"relaxed/relaxed"),
        (b"d", key.domain.encode()),
        (b"s", key.selector.encode()),
        (b"t", str(int(now if now is not None else time.time())).encode()),
        (b"h", b" : ".join(SIGNED_HEADERS)),  # spaces: fold points
        (b"bh", body_hash),
        # A placeholder as long as a signature line, so b= folds onto a line of its own and
        # filling it in does not move the folds of the tags before it (as dkimpy does).
        (b"b", b"0" * 60),
    ]
    unsigned = dkim.RE_BTAG.sub(b"\\1", dkim.fold(_join(fields), namelen=len(_NAME)))
    hasher = hashlib.sha256()
    # dkim.hash_headers, with only the signed fields canonicalised (not every field).
    signed = _relaxed(_select(headers))
    (own,) = _relaxed([(_NAME, dkim.RE_BTAG.sub(b"\\1", b" " + unsigned))])
    for name, value in [*signed, (own[0], own[1].rstrip())]:
        hasher.update(name)
        hasher.update(b":")
        hasher.update(value)
    signature = key.private_key.sign(
        hasher.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )
    fields[-1] = (b"b", base64.b64encode(signature))
    return _NAME + b": " + dkim.fold(_join(fields) + b"\r\n", namelen=len(_NAME))


_FIELD_NAME = re.compile(rb"([\x21-\x7e]+?):")
_WSP = re.compile(rb"[\t ]+")
_LINE_END = re.compile(rb"\r?\n")


def _select(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """dkim.select_headers(headers, SIGNED_HEADERS): for each listed name the last field of that
    name not taken yet, bottom up (a name listed twice takes the field above the first); a name
    with none left selects nothing. One pass over the fields instead of one per listed name."""
    by_name: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for field in headers:
        by_name.setdefault(field[0].lower(), []).append(field)
    selected = []
    for name in SIGNED_HEADERS:
        left = by_name.get(name)
        if left:
            selected.append(left.pop())
    return selected


def _relaxed(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """dkimpy's relaxed header canonicalisation (RFC 6376 §3.4.2) with compiled patterns: name
    lower-cased, value unfolded, runs of WSP as one space, stripped, CRLF-terminated."""
    out = []
    for name, value in headers:
        # The patterns only where they can change something: a CRLF-only value unfolds with
        # replace(), and without a tab or two spaces in a row every run of WSP is one space.
        value = value.replace(b"\r\n", b"")
        if b"\n" in value:
            value = _LINE_END.sub(b"", value)
        if b"\t" in value or b"  " in value:
            value = _WSP.sub(b" ", value)
        out.append((name.lower().rstrip(), value.strip() + b"\r\n"))
    return out


def _parse(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """dkim.rfc822_parse's (fields, body) for a message with CRLF line ends only (what compose
    builds), without splitting and joining again every line of the body; anything else goes
    to dkimpy."""
    end = message.find(b"\r\n\r\n")
    if end < 0 or message.count(b"\n") != message.count(b"\r\n"):
        return dkim.rfc822_parse(message)  # type: ignore[no-any-return]
    fields: list[tuple[bytes, bytes]] = []
    for line in message[:end].split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + line + b"\r\n")
            continue
        match = _FIELD_NAME.match(line)
        if match is None:
            return dkim.rfc822_parse(message)  # type: ignore[no-any-return]
        fields.append((match.group(1), line[match.end() :] + b"\r\n"))
    return fields, message[end + 4 :]


def _join(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"; ".join(name + b"=" + value for name, value in fields)


def sign(message: bytes, key: DkimKey) -> bytes:
    """The message with its DKIM-Signature field prepended."""
    return signature_header(message, key) + message


# --- the per-process key cache --------------------------------------------------------------------
# Decrypting the stored key (Fernet) and parsing it (ASN.1) costs more than signing: done once per
# domain and process, then reused for every message of every batch. Entries expire so a domain
# removed and added again (a new key) is picked up; keys are never rotated in place.
KEY_TTL_SECONDS = 600.0
_keys: dict[tuple[str, str], tuple[float, DkimKey | None]] = {}
_keys_lock = threading.Lock()


def key_for(domain: str) -> DkimKey | None:
    """The signing key of `domain` in the current tenant schema, or None when the tenant holds no
    key for it (a connected Google/Microsoft mailbox on a domain never added: its provider signs)
    or the stored key is unusable (logged once per expiry)."""
    domain = domain.lower()
    cache_key = (str(getattr(connection, "schema_name", "")), domain)
    now = time.monotonic()
    with _keys_lock:
        cached = _keys.get(cache_key)
    if cached is not None and cached[0] > now:
        return cached[1]
    key = _load(domain)
    with _keys_lock:
        _keys[cache_key] = (now + KEY_TTL_SECONDS, key)
    return key


def _load(domain: str) -> DkimKey | None:
    found = SendingDomain.objects.filter(name=domain).only("dkim_selector", "dkim_private_key")
    row = found.first()
    if row is None:
        return None
    try:
        return load_key(domain, row.dkim_selector, row.dkim_private_key.reveal())
    except (DkimKeyError, SecretUnavailable) as exc:
        logger.error("Mail from %s goes out unsigned: %s", domain, exc)
        return None


def forget_keys() -> None:
    """Empty the cache (tests; a process that knows a key changed)."""
    with _keys_lock:
        _keys.clear()
