"""The warm-up pool's tag (docs/warmup.md, "The tag").

A warm-up message is recognised by its Message-ID alone: `<w{member}.{nonce}.{sig}@{domain}>`,
where `member` is the sending mailbox's pool index id, `nonce` is random and `sig` an HMAC of
both under a key derived from SECRET_KEY. A person never sees a Message-ID, a filter sees an
ordinary random one, and every reply carries it in In-Reply-To and References, so the pool's
readers recognise replies too. Nothing else in the message marks it: no header, no body code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from django.conf import settings

_PREFIX = "w"
_SIG_BYTES = 10


@dataclass(frozen=True)
class WarmupTag:
    """What a tagged Message-ID tells: which pool member sent it."""

    member_id: int
    message_id: str  # without angle brackets


def _key() -> bytes:
    return hashlib.sha256(b"penguinmails.warmup.tag:" + settings.SECRET_KEY.encode()).digest()


def _sign(member_id: int, nonce: str) -> str:
    mac = hmac.new(_key(), f"{member_id}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:_SIG_BYTES]).decode().lower()


def make_message_id(member_id: int, domain: str) -> str:
    """A new tagged Message-ID (without angle brackets) for a message from pool member
    `member_id`, on the sending `domain`."""
    nonce = secrets.token_hex(8)
    return f"{_PREFIX}{member_id}.{nonce}.{_sign(member_id, nonce)}@{domain}"


def parse(message_id: str | None) -> WarmupTag | None:
    """The tag of one Message-ID (with or without angle brackets), or None when it is not one
    of the pool's (forged signatures included)."""
    if not message_id:
        return None
    value = message_id.strip().strip("<>").strip()
    local, _, domain = value.partition("@")
    parts = local.split(".")
    if not domain or len(parts) != 3 or not parts[0].startswith(_PREFIX):
        return None
    member, nonce, sig = parts
    if not member[1:].isdigit() or len(member) > 20:
        return None
    member_id = int(member[1:])
    if not hmac.compare_digest(sig, _sign(member_id, nonce)):
        return None
    return WarmupTag(member_id=member_id, message_id=value)


def _ids(value: str | None) -> list[str]:
    """The message ids in a References or In-Reply-To header value."""
    if not value:
        return []
    return [token for token in str(value).replace(",", " ").split() if "@" in token]


def find(message: Message) -> WarmupTag | None:
    """The pool tag of a message: its own Message-ID first, then the ids it answers
    (In-Reply-To, References), newest first. None for any other mail."""
    own = parse(str(message.get("Message-ID", "") or ""))
    if own is not None:
        return own
    answered = _ids(message.get("In-Reply-To")) + list(reversed(_ids(message.get("References"))))
    for candidate in answered:
        tag = parse(candidate)
        if tag is not None:
            return tag
    return None


def sender_address(message: Message) -> str:
    """The From address of a message, lower-case ('' when none)."""
    pairs = getaddresses([str(message.get("From", "") or "")])
    return pairs[0][1].lower() if pairs and pairs[0][1] else ""


__all__ = ["WarmupTag", "find", "make_message_id", "parse", "sender_address"]
