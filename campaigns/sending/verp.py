"""The bounce address (VERP) of a campaign message (docs/sending.md, "Bounce address (VERP)").

Every campaign message's envelope sender (MAIL FROM, which the receiver writes into
Return-Path and where it sends any later bounce) names the message: `<local>+b-<token>@<domain>`
on the mailbox's own sending domain, so the bounce lands in the sending mailbox (the `+`
extension is routed to it and passes a submission server's sender-login check) and names the
exact message even when the reporting server strips the original headers. When the mailbox's
local part leaves no room for the token within 64 characters, the address is `b-<token>@<domain>`.

The token is the tenant id (4 bytes) and the message pk (8 bytes) followed by an 80-bit
HMAC-SHA256 under a key derived from SECRET_KEY for this purpose only, in lower-case base32
without padding (36 characters): receivers may lower-case a local part, so nothing in it is
case-sensitive. Nothing in it is secret, everything in it is authentic: a forged, altered or
truncated token does not verify, and a token of one tenant never names another tenant's message.
Unlike the tracking tokens it does not expire: a bounce may come days later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Mapping
from functools import lru_cache

from django.conf import settings

from deliverability.models import Mailbox, MailboxKind

PREFIX = "b-"
_PAYLOAD = struct.Struct(">IQ")  # tenant id, message pk
_MAC_BYTES = 10
_RAW_BYTES = _PAYLOAD.size + _MAC_BYTES
TOKEN_CHARS = -(-_RAW_BYTES * 8 // 5)  # base32 without padding: 36
MAX_LOCAL = 64  # RFC 5321
# Their submission servers refuse or rewrite a MAIL FROM other than the signed-in account: the
# mailbox's own address stays the envelope sender (the bounce is matched by its headers).
PROVIDER_KINDS = frozenset({MailboxKind.GOOGLE, MailboxKind.MICROSOFT})


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(b"penguinmails.verp.v1:" + secret.encode()).digest()


def _mac(payload: bytes) -> bytes:
    return hmac.new(_key(settings.SECRET_KEY), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def token(tenant_id: int, message_pk: int) -> str:
    payload = _PAYLOAD.pack(int(tenant_id), int(message_pk))
    return base64.b32encode(payload + _mac(payload)).decode("ascii").rstrip("=").lower()


def bounce_address(tenant_id: int, message_pk: int, domain: str, *, local: str = "") -> str:
    """The message's envelope sender on `domain`: `local+b-<token>@domain` when `local` (the
    sending mailbox's local part) is given and the result fits in 64 characters, else
    `b-<token>@domain`."""
    tagged = f"{PREFIX}{token(tenant_id, message_pk)}"
    if local and "+" not in local and len(local) + 1 + len(tagged) <= MAX_LOCAL:
        tagged = f"{local}+{tagged}"
    return f"{tagged}@{domain.lower()}"


def parse_bounce_address(address: str) -> tuple[int, int] | None:
    """(tenant_id, message_pk) of a bounce address this platform made, in any letter case, with
    or without angle brackets; None for any other address (foreign format, forged, tampered)."""
    text = (address or "").strip().strip("<>").strip()
    local, at, _ = text.rpartition("@")
    if not at or len(local) > MAX_LOCAL:
        return None
    tagged = local.rpartition("+")[2].lower()
    if not tagged.startswith(PREFIX) or len(tagged) != len(PREFIX) + TOKEN_CHARS:
        return None
    encoded = tagged[len(PREFIX) :].upper()
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except (ValueError, binascii.Error):
        return None
    if len(raw) != _RAW_BYTES or base64.b32encode(raw).decode("ascii").rstrip("=") != encoded:
        return None  # wrong size, or unused trailing bits set: one spelling per token
    payload, given = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if not hmac.compare_digest(given, _mac(payload)):
        return None
    tenant_id, message_pk = _PAYLOAD.unpack(payload)
    return tenant_id, message_pk


def envelope_sender(
    mailbox: Mailbox, *, tenant_id: int, message_pk: int, domains: Mapping[str, object]
) -> str:
    """MAIL FROM for one campaign message: its bounce address when the mailbox sends from one of
    the tenant's sending domains (`domains`, by name: SPF and the mail server are ours), else
    the mailbox's address (a connected Google or Microsoft account, or a connected mailbox on a
    domain the tenant never added)."""
    local, _, domain = mailbox.address.rpartition("@")
    if mailbox.kind in PROVIDER_KINDS or (domain not in domains and domain.lower() not in domains):
        return mailbox.address
    return bounce_address(tenant_id, message_pk, domain, local=local)


__all__ = ["bounce_address", "envelope_sender", "parse_bounce_address", "token"]
