"""Failed recipients out of a bounce: RFC 3464 reports first, then the forms MTAs write by hand.

Three sources, best first, merged per address:
1. a message/delivery-status part (RFC 3464; RFC 6533's global form too): Final-Recipient,
   Action, Status, Diagnostic-Code, Remote-MTA, exactly as the reporting MTA stated them;
2. flufl.bounce's detectors, which know which address many odd MTAs (qmail, Exim, Yahoo,
   Microsoft, SimpleMatch forms...) meant, but state no status;
3. the human-readable text: each candidate address with the enhanced status code (RFC 3463) and
   SMTP reply that follow it (Postfix, Exim, qmail, Gmail), or the transcript's first code
   (Sendmail), since many non-standard bounces give the code only in prose.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser

from flufl.bounce import all_failures

from deliverability.inbound.parse import content_type, header, part_text, walk

# flufl.bounce logs every detector it runs at INFO (~15 lines per message read): quiet it unless
# LOGGING names it (the logger's level is only set when nothing configured it).
if logging.getLogger("flufl.bounce").level == logging.NOTSET:
    logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

_STATUS_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_ORIGINAL_TYPES = {
    "message/rfc822",
    "text/rfc822-headers",
    "message/global",
    "message/global-headers",
    "message/partial",
}
_FAILED_ACTIONS = {"failed", "delayed", ""}

STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
SMTP_CODE = re.compile(r"(?<![\d.#-])([45][0-7]\d)(?=[ -]|$)", re.MULTILINE)
ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_NOT_RECIPIENT = re.compile(
    r"^(postmaster|mailer-daemon|mail-daemon|mailerdaemon|abuse|noreply|no-reply|root|"
    r"hostmaster|double-bounce|bounce|bounces|mdaemon)@",
    re.IGNORECASE,
)
# Where the returned original begins in a plain-text bounce: addresses after it are not failures.
_ORIGINAL_START = re.compile(
    r"^.{0,10}(-{2,}|={2,}|\*{2,}|#{2,}).{0,5}(original message|returned message|"
    r"message (text|headers?)|copy of (the )?(original )?message|"
    r"below this line|unsent message|headers of|undelivered message|returned mail)"
    r"|^\s*(-{2,} )?(original message follows|the original message (was|is)|"
    r"bounced e-mail:|--- below this line|content-type: message/rfc822|"
    r"------ this is a copy of the message|received: from )",
    re.IGNORECASE | re.MULTILINE,
)
_MESSAGE_ID = re.compile(r"^message-id:\s*(<[^>\s]{3,250}>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class Failure:
    """One failed recipient as the bounce states it (status None when it states none)."""

    address: str
    status: str | None = None
    smtp_code: str | None = None
    remote_reply: str = ""
    action: str = ""
    context: str = ""  # prose around a failure that states no code: read for the reason only


def delivery_status_failures(message: Message, notes: list[str]) -> list[Failure] | None:
    """The RFC 3464 recipients, or None when the message carries no delivery-status part."""
    blocks: list[Message] | None = None
    for part in walk(message, notes):
        if content_type(part) in _STATUS_TYPES:
            blocks = _status_blocks(part)
            break
    if blocks is None:
        return None
    failures = []
    for block in blocks[1:] or blocks:
        failure = _from_block(block)
        if failure and failure.action in _FAILED_ACTIONS:
            failures.append(failure)
    return failures


_INLINE_BLOCK = re.compile(
    r"^(?:Final|Original)-Recipient:.*?(?=\n[ \t]*\n|\n--|\Z)",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


def inline_status_failures(message: Message, notes: list[str]) -> list[Failure]:
    """RFC 3464 recipient blocks inside text: broken boundaries, reports forwarded inline."""
    failures: list[Failure] = []
    for part in walk(message, notes):
        if isinstance(part.get_payload(), list):
            continue
        text = part_text(part).replace("\r\n", "\n")
        if "-recipient:" not in text.lower():
            continue
        for found in _INLINE_BLOCK.finditer(text):
            block = Parser().parsestr(found.group(0).strip() + "\n\n", headersonly=True)
            failure = _from_block(block)
            if failure and failure.action in _FAILED_ACTIONS and failure.status:
                failures.append(failure)
        if failures:
            break
    return list({f.address: f for f in failures}.values())


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    # Encoded or malformed: re-read the text as blank-line-separated header blocks.
    text = part_text(part).replace("\r\n", "\n")
    return [
        Parser().parsestr(chunk.strip() + "\n\n", headersonly=True)
        for chunk in re.split(r"\n\s*\n", text)
        if chunk.strip()
    ]


def _from_block(block: Message) -> Failure | None:
    recipient = header(block, "Final-Recipient") or header(block, "Original-Recipient")
    found = ADDRESS.search(recipient)
    if not found:
        return None
    diagnostic = header(block, "Diagnostic-Code")
    diagnostic = re.sub(r"^\s*(smtp|x-[\w-]+|ms)\s*;\s*", "", diagnostic, flags=re.IGNORECASE)
    status_field = STATUS.search(header(block, "Status"))
    status = status_field.group(0) if status_field else _first_status(diagnostic)
    code = SMTP_CODE.search(diagnostic)
    return Failure(
        address=found.group(0).strip(".").lower(),
        status=status,
        smtp_code=code.group(1) if code else None,
        remote_reply=diagnostic[:1000],
        action=header(block, "Action").lower().split(" ")[0],
    )


def _first_status(text: str) -> str | None:
    found = STATUS.search(text)
    return found.group(0) if found else None


def bounce_text(message: Message, notes: list[str]) -> str:
    """The human-readable report: the text parts outside the returned original, cut where a
    plain-text bounce starts quoting the original."""
    chunks: list[str] = []
    inside_original: set[int] = set()
    for part in walk(message, notes):
        kind = content_type(part)
        if id(part) in inside_original:
            continue
        if kind in _ORIGINAL_TYPES:
            inside_original.update(id(p) for p in walk(part))
            continue
        if kind in ("text/plain", "text/html") or (kind.startswith("text/") and not chunks):
            text = part_text(part)
            if kind == "text/html":
                text = re.sub(r"<[^>]{0,500}>", " ", text)
            chunks.append(text)
    text = "\n".join(chunks).replace("\r\n", "\n")
    cut = _ORIGINAL_START.search(text, 40)
    return text[: cut.start()] if cut else text


def library_recipients(message: Message) -> list[str]:
    """flufl.bounce's answer: permanent failures first, then temporary ones."""
    try:
        permanent, temporary = all_failures(message)
    except Exception:  # noqa: BLE001 - a third-party detector must never crash the poller
        return []
    found = []
    for raw in [*sorted(permanent), *sorted(temporary)]:
        value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        match = ADDRESS.search(value)
        if match:
            found.append(match.group(0).strip(".").lower())
    return list(dict.fromkeys(found))


def text_failures(text: str, *, exclude: set[str], known: list[str]) -> list[Failure]:
    """Failures read from prose: each address with the codes and reply that follow it."""
    spots = [(m.start(), m.group(0).strip(".").lower()) for m in ADDRESS.finditer(text)]
    trusted = set(known)
    named = [(at, a) for at, a in spots if a in trusted or a not in exclude]
    # "postmaster@" in a help line is not a failure, unless it is the only address there is.
    spots = [(at, a) for at, a in named if a in trusted or not _NOT_RECIPIENT.match(a)] or named
    wanted = trusted or {a for _, a in spots}
    failures: dict[str, Failure] = {}
    for index, (at, address) in enumerate(spots):
        if address not in wanted or address in failures:
            continue
        end = min(
            at + 1200, *(s for s, _ in spots[index + 1 :] if s > at + len(address) + 80), len(text)
        )
        failures[address] = _failure_near(address, text[at:end])
    for address in known:
        failures.setdefault(address, Failure(address=address))
    # A transcript (Sendmail) or a summary line often carries the only code: share it.
    overall = _failure_near("", text)
    for failure in failures.values():
        if failure.status is None and failure.smtp_code is None:
            failure.status, failure.smtp_code = overall.status, overall.smtp_code
            failure.remote_reply = failure.remote_reply or overall.remote_reply
    return list(failures.values())


def _failure_near(address: str, window: str) -> Failure:
    status = STATUS.search(window)
    code = SMTP_CODE.search(window)
    anchor = min((m.start() for m in (status, code) if m), default=None)
    reply = ""
    if anchor is not None:
        start = window.rfind("\n", 0, anchor) + 1
        reply = " ".join(window[start : start + 600].split("\n\n")[0].split())
    else:
        lines = [ln.strip() for ln in window.splitlines()[1:6] if re.search(r"\w{2}", ln)]
        reply = " ".join(lines)[:600]
    return Failure(
        address=address,
        status=status.group(0) if status else None,
        smtp_code=code.group(1) if code else None,
        remote_reply=reply[:1000],
    )


def original_recipient(message: Message, notes: list[str]) -> str | None:
    """The single To of the returned original: the last resort for a report naming no one."""
    for part in walk(message, notes):
        if content_type(part) not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return None
        addresses = ADDRESS.findall(header(inner, "To"))
        return addresses[0].lower() if len(addresses) == 1 else None
    return None


def original_message_id(message: Message, text: str, notes: list[str]) -> str | None:
    """The Message-ID of the message that bounced or was complained about."""
    for part in walk(message, notes):
        if content_type(part) not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message) and inner.get("Message-ID"):
            return header(inner, "Message-ID") or None
        found = _MESSAGE_ID.search(part_text(part))
        if found:
            return found.group(1)
    found = _MESSAGE_ID.search(text)
    return found.group(1) if found else None
