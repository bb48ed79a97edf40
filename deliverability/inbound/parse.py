"""Safe MIME parsing: the stdlib `email` parser behind limits, so hostile mail cannot hurt us.

Limits, each recorded as a note on the result rather than raised: the bytes read (a bounce's
facts sit in its first kilobytes; a 20 MB message is cut, never refused outright, so its headers
still count), the parts walked, the nesting depth, NUL bytes (dropped: they end C strings in
other tools and have no meaning in mail) and unknown charsets (decoded as UTF-8 with
replacement). compat32 is used because it never raises on broken headers, and it hands
message/delivery-status bodies over as header blocks, which is what RFC 3464 parsing wants.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser

MAX_BYTES = 2 * 1024 * 1024
MAX_PARTS = 200
MAX_DEPTH = 8
MAX_TEXT = 256 * 1024  # characters of one part's text handed to the pattern matchers

_PARSER = BytesParser(policy=policy.compat32)


@dataclass
class Parsed:
    """A parsed message and what was cut or repaired on the way (empty when nothing was)."""

    message: Message
    notes: list[str] = field(default_factory=list)


def parse_bytes(raw: bytes, *, max_bytes: int = MAX_BYTES) -> Parsed:
    notes: list[str] = []
    if len(raw) > max_bytes:
        notes.append(f"truncated: {len(raw)} bytes, read the first {max_bytes}")
        raw = raw[:max_bytes]
    if b"\x00" in raw:
        notes.append("NUL bytes removed")
        raw = raw.replace(b"\x00", b"")
    try:
        message = _PARSER.parsebytes(raw)
    except (RecursionError, ValueError, LookupError, TypeError, IndexError) as exc:
        # The parser is tolerant, but deeply nested multiparts can still exhaust the stack:
        # keep the headers and treat the rest as one opaque text body.
        notes.append(f"unparseable MIME ({type(exc).__name__}): read as plain text")
        head, _, body = raw.partition(b"\n\n")
        message = _PARSER.parsebytes(head + b"\n\n", headersonly=True)
        message.set_payload(body.decode("utf-8", "replace"))
        del message["Content-Type"]
    if message.defects:
        notes.append(
            "MIME defects: " + ", ".join(sorted({type(d).__name__ for d in message.defects}))
        )
    return Parsed(message=message, notes=notes)


def walk(message: Message, notes: list[str] | None = None) -> Iterator[Message]:
    """Every part, depth first, stopping at MAX_PARTS parts and MAX_DEPTH levels."""
    count = 0
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            if notes is not None:
                notes.append(f"stopped after {MAX_PARTS} parts")
            return
        yield part
        payload = part.get_payload()
        if isinstance(payload, list) and depth < MAX_DEPTH:
            children = [p for p in payload if isinstance(p, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
        elif isinstance(payload, list) and notes is not None:
            notes.append(f"stopped at depth {MAX_DEPTH}")


def header(message: Message, name: str) -> str:
    """A header's decoded value ('' when absent or undecodable); RFC 2047 words decoded."""
    value = message.get(name)
    if value is None:
        return ""
    text = str(value)
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (LookupError, ValueError, UnicodeError, TypeError):
            pass  # an unknown charset in an encoded word: keep the raw form
    return re.sub(r"\s+", " ", text).strip()


def content_type(message: Message) -> str:
    try:
        return message.get_content_type()
    except (AttributeError, TypeError, ValueError):
        return "text/plain"


def part_text(part: Message) -> str:
    """A leaf part's text, decoded by its transfer encoding and charset, never raising."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(_block_text(p) for p in payload if isinstance(p, Message))
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError):
        data = None
    if not isinstance(data, bytes):
        return str(payload)[:MAX_TEXT]
    charset = _charset(part)
    try:
        return data[:MAX_TEXT].decode(charset, "replace")
    except (LookupError, UnicodeError):
        return data[:MAX_TEXT].decode("utf-8", "replace")


def _charset(part: Message) -> str:
    try:
        charset = part.get_content_charset() or "utf-8"
    except (LookupError, ValueError, TypeError):
        return "utf-8"
    return charset if re.fullmatch(r"[A-Za-z0-9._:-]{1,40}", charset) else "utf-8"


def _block_text(block: Message) -> str:
    """A header block (message/delivery-status, message/rfc822) back to text."""
    lines = [f"{k}: {v}" for k, v in block.items()]
    body = block.get_payload()
    if isinstance(body, str) and body:
        lines.append("")
        lines.append(body[:MAX_TEXT])
    return "\n".join(lines)
