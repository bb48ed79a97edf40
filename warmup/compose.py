"""Warm-up messages (docs/warmup.md, "Messages"): natural text from the corpus shipped in
warmup/corpus/ (subjects, greetings, one or two body paragraphs, a closing line, a sign-off),
combined so that messages vary; plain text, no links, no tracking, no List-Unsubscribe. The
tagged Message-ID (warmup.tag) is the only mark; the message is DKIM-signed like campaign mail
(deliverability.dkim) when the tenant holds a key for the sending domain."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate
from functools import cache
from pathlib import Path

from deliverability import dkim

CORPUS = Path(__file__).resolve().parent / "corpus"


@cache
def _lines(name: str) -> tuple[str, ...]:
    text = (CORPUS / f"{name}.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class Text:
    subject: str
    body: str


def _first_name(address: str) -> str:
    local = address.partition("@")[0].split("+")[0]
    word = "".join(c if c.isalpha() else " " for c in local).split()
    return word[0].capitalize() if word else "there"


def write(to_address: str, from_name: str, rng: random.Random | None = None) -> Text:
    """A subject and a plain-text body for a message to `to_address`, signed by `from_name`."""
    rng = rng or random.Random()
    name = _first_name(to_address)
    middles = rng.sample(_lines("middles"), rng.choice((1, 1, 2)))
    parts = [
        rng.choice(_lines("openers")).format(name=name),
        *middles,
        rng.choice(_lines("closers")),
        f"{rng.choice(_lines('signoffs'))}\n{from_name}",
    ]
    return Text(rng.choice(_lines("subjects")), "\n\n".join(parts) + "\n")


def render(
    *,
    from_addr: str,
    from_name: str,
    to_addr: str,
    subject: str,
    body: str,
    message_id: str,
    in_reply_to: str = "",
) -> bytes:
    """The message as sent (CRLF), DKIM-signed when the tenant holds the domain's key. Call it
    in the tenant's schema (the key is the tenant's)."""
    mail = EmailMessage()
    mail["From"] = formataddr((from_name, from_addr)) if from_name else from_addr
    mail["To"] = to_addr
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        mail["In-Reply-To"] = f"<{in_reply_to}>"
        mail["References"] = f"<{in_reply_to}>"
    mail["MIME-Version"] = "1.0"
    mail.set_content(body)
    raw = mail.as_bytes(policy=SMTP)
    key = dkim.key_for(from_addr.rpartition("@")[2])
    return dkim.sign(raw, key) if key is not None else raw


__all__ = ["CORPUS", "Text", "render", "write"]
