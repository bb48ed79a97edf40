"""Building one campaign email (docs/sending.md, "The message"): multipart/alternative text and
HTML (or text/plain alone for a plain-text campaign), a Message-ID on the sending domain, Date,
From with the display name, Reply-To, List-Id, the one-click List-Unsubscribe pair, tracked links,
the open pixel when the campaign tracks opens, and a DKIM signature with the sending domain's
published key (deliverability.dkim). Header values are checked for CR and LF before anything is
built: a value that could add a header never reaches SMTP.
"""

from __future__ import annotations

import binascii
import random
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.utils import format_datetime, formataddr
from urllib.parse import quote

from campaigns.rendering import Rendered
from campaigns.tracking import links
from deliverability import dkim

# SMTP policy: CRLF line ends, long lines folded; `linesep` matters to the DATA dot-stuffing.
_POLICY = policy.SMTP


class HeaderInjection(ValueError):
    """A header value holds CR or LF (or NUL): refused before SMTP."""


def new_message_id(domain: str) -> str:
    """`<random@sending-domain>`: fixed at the first attempt and reused by every retry."""
    return f"<{uuid.uuid4().hex}@{domain}>"


def refuse_injection(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if any(c in value for c in "\r\n\x00"):
            raise HeaderInjection(f"The {name} header holds a line break; nothing was sent.")


@dataclass(frozen=True)
class Envelope:
    """Everything about one message that is not its rendered content."""

    message_pk: int
    tenant_id: int
    message_id: str
    from_name: str
    from_addr: str
    to_addr: str
    reply_to: str
    tracking_base: str  # links.base_url(...) of the sending domain
    date: datetime
    # The campaign's content switches (Campaign.track_opens / plain_text_only). The defaults are
    # what every message got before the switches existed.
    track_opens: bool = True
    plain_text_only: bool = False


def list_id(from_addr: str) -> str:
    """`<label.sending-domain>` (RFC 2919): one list per sending mailbox, so a reader's filter
    on it matches the person writing. Without it, List-Unsubscribe on a short message scores as
    an incomplete list header set (SpamAssassin's LIST_PARTIAL_SHORT_MSG, 1.0)."""
    local, _, domain = from_addr.rpartition("@")
    label = re.sub(r"[^a-z0-9-]+", "-", local.lower()).strip("-") or "mail"
    return f"<{label}.{domain.lower()}>"


def compose(parts: Rendered, envelope: Envelope) -> bytes:
    """The message as bytes for DATA, DKIM-signed when the tenant holds the sending domain's
    key. Raises HeaderInjection."""
    e = envelope
    unsubscribe = links.unsubscribe_url(e.tracking_base, e.tenant_id, e.message_pk)
    token = unsubscribe.rsplit("/", 1)[1]
    # The mailto form goes to the sending mailbox (the reply poller recognises the subject).
    mailto = f"mailto:{e.from_addr}?subject={quote('unsubscribe ' + token)}"
    headers = {
        "From": formataddr((e.from_name, e.from_addr)) if e.from_name else e.from_addr,
        "To": e.to_addr,
        "Reply-To": e.reply_to,
        "Subject": parts.subject,
        "Message-ID": e.message_id,
        "Date": format_datetime(e.date),
        "List-Id": list_id(e.from_addr),
        "List-Unsubscribe": f"<{unsubscribe}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    refuse_injection(headers)
    if e.plain_text_only:
        # No HTML part, so no pixel and no rewritten links: the text keeps its URLs as written.
        raw = flatten_text(headers, parts.text or " ")
    else:
        html, _ = links.track_html(
            parts.html, e.tracking_base, e.tenant_id, e.message_pk, pixel=e.track_opens
        )
        raw = flatten(headers, parts.text or " ", html)
    key = dkim.key_for(e.from_addr.rpartition("@")[2])
    return dkim.sign(raw, key) if key is not None else raw


# --- flattening ----------------------------------------------------------------------------------
# What EmailMessage(policy=SMTP) + set_content(cte="quoted-printable") + add_alternative(...) +
# as_bytes() produce, written directly: the stdlib's header objects and generator cost ~2 ms of
# CPU per message (parse every value, refold it), more than the whole SMTP exchange
# (docs/sending.md, "Profile"). Anything out of the plain case goes through the stdlib: a header
# value that is not printable ASCII, holds an encoded word or does not fold into 78-character
# lines is folded by `policy.SMTP` exactly as EmailMessage would. tests/sending/test_compose.py
# holds both to the same parsed result.
_MAX_LINE = 78  # policy.SMTP.max_line_length
_MAX_HARD_LINE = 998  # RFC 5322
# URL-like headers: folding at the spaces is enough. The stdlib would fold a token longer than a
# line into RFC 2047 encoded words, which RFC 2369 headers must not hold (receivers read the URL).
_SPACE_FOLDED = frozenset({"List-Unsubscribe"})


def _header(name: str, value: str) -> bytes:
    if value.isascii() and value.isprintable() and "=?" not in value and value == value.strip():
        line = f"{name}: {value}"
        if len(line) <= _MAX_LINE:
            return line.encode("ascii") + b"\r\n"
        if name in _SPACE_FOLDED and "  " not in value:
            folded = _fold_at_spaces(name, value)
            if folded is not None:
                return folded
    return _POLICY.fold_binary(*_POLICY.header_store_parse(name, value))


def _fold_at_spaces(name: str, value: str) -> bytes | None:
    """CRLF before a space where a line would pass 78 characters (unfolding restores the value
    exactly); None when a single word passes the 998-character limit."""
    words = value.split(" ")
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= _MAX_LINE:
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    if any(len(x) > _MAX_HARD_LINE for x in lines):
        return None
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _qp(text: str) -> bytes:
    """Quoted-printable of a text part with CRLF line ends, as the stdlib's content manager makes
    it (lines normalised to one terminator each, UTF-8), with binascii's C encoder."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    return binascii.b2a_qp(body, quotetabs=False, istext=True).replace(b"\n", b"\r\n")


def _boundary(*parts: bytes) -> bytes:
    # The stdlib's form. "==" never occurs in quoted-printable text, so it cannot collide; the
    # check is for the reader who doubts it.
    while True:
        boundary = ("=" * 15 + f"{random.randrange(sys.maxsize):019d}==").encode("ascii")
        if not any(boundary in part for part in parts):
            return boundary


def flatten(headers: dict[str, str], text: str, html: str) -> bytes:
    """multipart/alternative (text, then HTML; both quoted-printable UTF-8) under `headers`."""
    text_qp, html_qp = _qp(text), _qp(html)
    boundary = _boundary(text_qp, html_qp)
    out = [_header(name, value) for name, value in headers.items()]
    out.append(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n"
        b' boundary="' + boundary + b'"\r\n\r\n'
    )
    for subtype, body in ((b"plain", text_qp), (b"html", html_qp)):
        out.append(
            b"--" + boundary + b"\r\nContent-Type: text/" + subtype + b'; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body + b"\r\n"
        )
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def flatten_text(headers: dict[str, str], text: str) -> bytes:
    """A single text/plain part (quoted-printable UTF-8) under `headers`: what
    EmailMessage(policy=SMTP).set_content(text, cte="quoted-printable") builds."""
    out = [_header(name, value) for name, value in headers.items()]
    out.append(
        b'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + _qp(text)
    )
    return b"".join(out)
