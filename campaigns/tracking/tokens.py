"""Signed tracking tokens, bound to a tenant, a message and (for clicks) the destination.

A token is `<payload>.<mac>`, both base64url without padding. The payload is
`v1|kind|tenant_id|message_pk|issued_day[|url]`; the MAC is HMAC-SHA256 over it with a key
derived from SECRET_KEY for tracking only (truncated to 128 bits). Nothing in a token is secret,
everything in it is authentic: a click token carries the URL the sender found in that message,
so the click endpoint can only redirect to a destination that was in the message (no open
redirect), and a token from another tenant or message does not verify for this one. Tokens
expire TRACKING_TOKEN_MAX_AGE_DAYS after the message was built (old mail keeps working for a
year by default; after that the endpoints answer 404 and record nothing).

Verification costs one HMAC and a split: the endpoints run it on every request without touching
the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from django.conf import settings

VERSION = "v1"


class TokenKind(StrEnum):
    """What a token is for; the value is the one-letter path segment (`/t/<kind>/...`) and the
    payload's kind field, so it never changes."""

    OPEN = "o"  # the open pixel
    CLICK = "c"
    UNSUBSCRIBE = "u"


KINDS = frozenset(TokenKind)
_DAY = 86400


class BadToken(Exception):
    """Malformed, tampered, foreign or expired: the endpoint answers 404."""


@dataclass(frozen=True)
class Token:
    kind: str
    tenant_id: int
    message_pk: int
    issued_day: int
    url: str = ""


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(b"penguinmails.tracking.v1:" + secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = ("", "===", "==", "=")


def _unb64(text: str) -> bytes:
    # What base64.urlsafe_b64decode does (non-alphabet bytes skipped), minus its wrappers: the
    # endpoints decode two of these per request. A non-ASCII character is a ValueError.
    padded = (text + _PADDING[len(text) % 4]).encode("ascii")
    return binascii.a2b_base64(padded.translate(_FROM_URLSAFE))


def _mac(payload: bytes) -> bytes:
    # hmac.digest: OpenSSL's one-shot HMAC, without an HMAC object per call.
    return hmac.digest(_key(settings.SECRET_KEY), payload, "sha256")[:16]


def today() -> int:
    return int(time.time()) // _DAY


def sign(
    kind: str, tenant_id: int, message_pk: int, url: str = "", *, day: int | None = None
) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    if (kind == TokenKind.CLICK) != bool(url):
        raise ValueError("a click token needs a URL, and only a click token has one")
    issued = today() if day is None else day
    parts = [VERSION, kind, str(int(tenant_id)), str(int(message_pk)), str(issued)]
    if url:
        parts.append(url)
    payload = "|".join(parts).encode()
    return f"{_b64(payload)}.{_b64(_mac(payload))}"


def verify(token: str, *, kind: str, max_age_days: int | None = None) -> Token:
    """The token's contents, or BadToken. `kind` must match: a pixel token is no click token."""
    try:
        encoded, mac = token.split(".", 1)
        payload = _unb64(encoded)
        given = _unb64(mac)
    except (ValueError, binascii.Error) as exc:
        raise BadToken("malformed") from exc
    if not hmac.compare_digest(given, _mac(payload)):
        raise BadToken("bad signature")
    try:
        parts = payload.decode().split("|", 5)
        version, got_kind, tenant, message, issued = parts[:5]
        url = parts[5] if len(parts) == 6 else ""
        token_obj = Token(got_kind, int(tenant), int(message), int(issued), url)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadToken("malformed payload") from exc
    if version != VERSION or got_kind != kind:
        raise BadToken("wrong kind")
    age = settings.TRACKING_TOKEN_MAX_AGE_DAYS if max_age_days is None else max_age_days
    if today() - token_obj.issued_day > age:
        raise BadToken("expired")
    return token_obj


# --- Unsubscribe addresses (List-Unsubscribe: <mailto:...>) ---------------------------------
# A mail address's local part is at most 64 characters and may be lower-cased on the way (some
# MTAs and clients do), so the web token (base64url, case-sensitive, ~60 characters) does not
# fit. The mailto token is a packed binary payload (tenant 4 bytes, message 8, issued day 2) and
# an 80-bit MAC under its own derived key, in lower-case base32: 39 characters.
_MAILTO = struct.Struct(">IQH")
_MAILTO_MAC_BYTES = 10


@lru_cache(maxsize=4)
def _mailto_key(secret: str) -> bytes:
    return hashlib.sha256(b"penguinmails.tracking.mailto.v1:" + secret.encode()).digest()


def unsubscribe_tenant(token: str, max_age_days: int) -> int | None:
    """The tenant id of a valid unsubscribe token, None for a bad one (the sandbox's mail pages
    attribute captured messages with it: penguinmails.sandbox.scope)."""
    try:
        return verify(token, kind=TokenKind.UNSUBSCRIBE, max_age_days=max_age_days).tenant_id
    except BadToken:
        return None


def sign_mailto(tenant_id: int, message_pk: int, *, day: int | None = None) -> str:
    issued = (today() if day is None else day) & 0xFFFF
    payload = _MAILTO.pack(int(tenant_id), int(message_pk), issued)
    mac = hmac.new(_mailto_key(settings.SECRET_KEY), payload, hashlib.sha256).digest()
    raw = payload + mac[:_MAILTO_MAC_BYTES]
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def verify_mailto(text: str, *, max_age_days: int | None = None) -> Token:
    """The unsubscribe token in a mailto local part (any case), or BadToken."""
    try:
        cleaned = text.strip().upper()
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (ValueError, binascii.Error) as exc:
        raise BadToken("malformed") from exc
    if len(raw) != _MAILTO.size + _MAILTO_MAC_BYTES:
        raise BadToken("malformed")
    payload, given = raw[: _MAILTO.size], raw[_MAILTO.size :]
    mac = hmac.new(_mailto_key(settings.SECRET_KEY), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(given, mac[:_MAILTO_MAC_BYTES]):
        raise BadToken("bad signature")
    tenant_id, message_pk, issued16 = _MAILTO.unpack(payload)
    # The day is stored modulo 2**16 (179 years): the most recent day with those low bits.
    now = today()
    issued = now - ((now - issued16) & 0xFFFF)
    age = settings.TRACKING_TOKEN_MAX_AGE_DAYS if max_age_days is None else max_age_days
    if now - issued > age:
        raise BadToken("expired")
    return Token(TokenKind.UNSUBSCRIBE, tenant_id, message_pk, issued)
