"""Reading what the sandbox SMTP server captured (its Maildir): list, get one, clear."""

from __future__ import annotations

import mailbox
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from penguinmails.sandbox.smtp import ENVELOPE_FROM_HEADER, ENVELOPE_TO_HEADER, open_maildir

# Maildir keys are `<time>.<unique>.<host>`; anything else in a URL is refused before touching
# the filesystem.
KEY_RE = re.compile(r"^[A-Za-z0-9._\-]{1,200}$")


@dataclass(frozen=True)
class CapturedMessage:
    """One message as the sandbox received it."""

    key: str
    received_at: datetime
    envelope_from: str
    envelope_to: list[str]
    subject: str
    from_header: str
    to_header: str
    date_header: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    size: int = 0
    raw: bytes = b""

    def header(self, name: str) -> str:
        """The first header `name` (any case), "" when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), "")

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


# Which messages a caller may see (a tenant's page: penguinmails.sandbox.scope); None is all.
Where = Callable[[CapturedMessage], bool] | None


def _addresses(value: str) -> list[str]:
    return [a.strip().strip("<>") for a in value.split(",") if a.strip()]


def _part_text(msg: EmailMessage, subtype: str) -> str | None:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset or broken encoding: show what we can
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None


class SandboxStore:
    """A Maildir written by penguinmails.sandbox.smtp."""

    def __init__(self, maildir: Path | str | None = None) -> None:
        if maildir is None:
            from django.conf import settings

            maildir = settings.SANDBOX_MAILDIR
        self.path = Path(maildir)

    def _box(self) -> mailbox.Maildir:
        return open_maildir(self.path)

    def _load(self, box: mailbox.Maildir, key: str) -> CapturedMessage:
        stored = box.get_message(key)
        raw = stored.as_bytes()
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        return CapturedMessage(
            key=key,
            received_at=datetime.fromtimestamp(stored.get_date(), tz=UTC),
            envelope_from=str(msg.get(ENVELOPE_FROM_HEADER, "")).strip().strip("<>"),
            envelope_to=_addresses(str(msg.get(ENVELOPE_TO_HEADER, ""))),
            subject=str(msg.get("Subject", "")),
            from_header=str(msg.get("From", "")),
            to_header=str(msg.get("To", "")),
            date_header=str(msg.get("Date", "")),
            headers=[(name, str(value)) for name, value in msg.items()],
            text=_part_text(msg, "plain"),
            html=_part_text(msg, "html"),
            size=len(raw),
            raw=raw,
        )

    def list_messages(
        self, *, limit: int | None = None, where: Where = None
    ) -> list[CapturedMessage]:
        """Messages (those `where` keeps) newest first (by delivery time, then key, which starts
        with the time)."""
        box = self._box()
        entries = []
        for key in box.keys():
            try:
                captured = self._load(box, key)
            except (KeyError, FileNotFoundError):  # cleared while we were reading
                continue
            if where is None or where(captured):
                entries.append(captured)
        entries.sort(key=lambda m: (m.received_at, m.key), reverse=True)
        return entries[:limit] if limit is not None else entries

    def get_message(self, key: str, *, where: Where = None) -> CapturedMessage | None:
        """The message stored under `key`; None when there is none or `where` refuses it."""
        if not KEY_RE.match(key):
            return None
        try:
            captured = self._load(self._box(), key)
        except (KeyError, FileNotFoundError):
            return None
        return captured if where is None or where(captured) else None

    def clear(self, *, where: Where = None) -> int:
        """Delete every captured message (those `where` keeps); returns how many went."""
        box = self._box()
        count = 0
        for key in box.keys():
            try:
                if where is not None and not where(self._load(box, key)):
                    continue
                box.remove(key)
                count += 1
            except (KeyError, FileNotFoundError):
                continue
        return count
