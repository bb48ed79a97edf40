"""Building one campaign email (docs/sending.md, "The message"): multipart/alternative text and
HTML, a Message-ID on the sending domain, Date, From with the display name, Reply-To, the one-click
List-Unsubscribe pair, tracked links and the open pixel. Header values are checked for CR and LF
before anything is built: a value that could add a header never reaches SMTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import quote

from campaigns.rendering import Rendered
from campaigns.tracking import links

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


def compose(parts: Rendered, envelope: Envelope) -> bytes:
    """The message as bytes for DATA. Raises HeaderInjection."""
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
        "List-Unsubscribe": f"<{unsubscribe}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    refuse_injection(headers)
    html, _ = links.track_html(parts.html, e.tracking_base, e.tenant_id, e.message_pk)
    message = EmailMessage(policy=_POLICY)
    for name, value in headers.items():
        message[name] = value
    message.set_content(parts.text or " ", cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes()
