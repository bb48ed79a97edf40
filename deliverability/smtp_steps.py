"""The SMTP steps of one delivery, for the workers' pool (deliverability.smtp_pool): what a
delivery's outcome is (Outcome, Delivery), one message sent step by step on one connection
(`deliver_once`), and a group of messages on distinct connections driven at once
(`envelopes`, then `bodies`): each step written to every connection before any reply is read,
MAIL, RCPT and DATA in one write where the server offers PIPELINING (RFC 2920)."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from deliverability.models import Mailbox


# --- the campaign sender's delivery (campaigns.sending.pipeline, docs/sending.md) -------------
class Outcome(StrEnum):
    """How one delivery ended, told apart the way the campaign sender needs."""

    ACCEPTED = "accepted"  # 250 after DATA
    REFUSED = "refused"  # 5xx for the recipient or the content: a hard bounce
    DEFERRED = "deferred"  # 4xx, or the connection failed before DATA: retry later
    SENDER_REFUSED = "sender_refused"  # 5xx to MAIL FROM: the mailbox's problem, not the lead's
    LOST = "lost"  # the connection died after the message was sent, before the reply


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    code: int | None = None
    response: str = ""


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


@dataclass(frozen=True)
class Outgoing:
    """One message of deliver_group(): flattened, for one recipient, on one mailbox."""

    raw: bytes
    mailbox: Mailbox
    from_addr: str
    to_addr: str


class Stage(Exception):
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery


def deliver_once(
    client: smtplib.SMTP,
    raw: bytes,
    from_addr: str,
    to_addr: str,
    before_body: Callable[[], None] | None = None,
) -> Delivery:
    """MAIL, RCPT, DATA one step at a time (smtplib's sendmail hides where a failure happened).
    Raises SMTPServerDisconnected/OSError only before the message body went out."""

    def refuse(code: int, response: bytes, *, sender: bool = False) -> Delivery:
        return _refusal(client, code, response, sender=sender)

    if not client.does_esmtp:
        client.ehlo_or_helo_if_needed()
    code, response = client.mail(from_addr)
    if code != 250:
        return refuse(code, response, sender=True)
    code, response = client.rcpt(to_addr)
    if code not in (250, 251):
        return refuse(code, response)
    client.putcmd("data")
    code, response = client.getreply()
    if code != 354:
        return refuse(code, response)
    if before_body is not None:
        try:
            before_body()
        except BaseException:
            client.close()  # mid-DATA: a dropped connection makes the server discard it
            raise
    try:
        client.send(_data(raw))
        code, response = client.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # The server may have the whole message: whether it was accepted cannot be known.
        lost = Delivery(Outcome.LOST, None, f"connection lost after DATA: {exc}"[:500])
        raise Stage(lost) from exc
    if code != 250:
        return refuse(code, response)
    return Delivery(Outcome.ACCEPTED, code, f"{code} {_text(response)}"[:500])


def _refusal(client: smtplib.SMTP, code: int, response: bytes, *, sender: bool = False) -> Delivery:
    """A refused step: RSET (so the connection serves the next message) and the outcome."""
    try:
        client.rset()
    except (smtplib.SMTPException, OSError):
        pass
    text = f"{code} {_text(response)}"[:500]
    if 400 <= code < 500:
        return Delivery(Outcome.DEFERRED, code, text)
    return Delivery(Outcome.SENDER_REFUSED if sender else Outcome.REFUSED, code, text)


def _data(raw: bytes) -> bytes:
    """The body as DATA sends it: dot-stuffed as smtplib.SMTP.data() does, and the final dot."""
    body = smtplib._quote_periods(raw)  # type: ignore[attr-defined]
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    return body + b".\r\n"


# --- deliver_group's steps: write to every connection, then read every reply ---------------------
Reply = tuple[int, bytes]


def _write(
    clients: dict[int, smtplib.SMTP], lines: dict[int, list[str]]
) -> dict[int, list[Reply] | BaseException]:
    """Each connection's command lines in one write; the connections that failed."""
    failed: dict[int, list[Reply] | BaseException] = {}
    for i, cmds in lines.items():
        try:
            clients[i].send("".join(f"{c}\r\n" for c in cmds))
        except (smtplib.SMTPException, OSError) as exc:
            failed[i] = exc
    return failed


def _read(
    clients: dict[int, smtplib.SMTP],
    lines: dict[int, list[str]],
    out: dict[int, list[Reply] | BaseException],
) -> dict[int, list[Reply] | BaseException]:
    """One reply per line written (skipping the connections already in `out`), into `out`."""
    for i, cmds in lines.items():
        if i not in out:
            try:
                out[i] = [clients[i].getreply() for _ in cmds]
            except (smtplib.SMTPException, OSError) as exc:
                out[i] = exc
    return out


def envelopes(
    clients: dict[int, smtplib.SMTP],
    group: Sequence[Outgoing],
    meanwhile: Callable[[], None] | None = None,
) -> dict[int, Delivery | BaseException | None]:
    """MAIL, RCPT and DATA on every connection: None where the server said 354, else the
    refusal (a Delivery) or the exception that ended the connection before any body.
    `meanwhile` runs once the first commands are written, while the servers answer."""
    replies: dict[int, list[Reply] | BaseException] = {}
    for i, client in clients.items():
        try:
            if not client.does_esmtp:
                client.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as exc:
            replies[i] = exc
    clients = {i: c for i, c in clients.items() if i not in replies}
    mail = {i: f"MAIL FROM:{_quoteaddr(group[i].from_addr)}" for i in clients}
    rcpt = {i: f"RCPT TO:{_quoteaddr(group[i].to_addr)}" for i in clients}
    piped = {i for i, c in clients.items() if c.has_extn("pipelining")}
    first = {i: [mail[i], rcpt[i], "DATA"] if i in piped else [mail[i]] for i in clients}
    written = _write(clients, first)
    if meanwhile is not None:
        meanwhile()
    replies.update(_read(clients, first, written))
    plain = {i: c for i, c in clients.items() if i not in piped}
    for step in (rcpt, {i: "DATA" for i in plain}):
        going = {i: [step[i]] for i in plain if _ok(replies[i])}
        for i, got in _read(plain, going, _write(plain, going)).items():
            previous = replies[i]
            if isinstance(got, BaseException) or isinstance(previous, BaseException):
                replies[i] = got
            else:
                replies[i] = [*previous, *got]
    return {
        i: got if isinstance(got, BaseException) else _judge(clients[i], got)
        for i, got in replies.items()
    }


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _quoteaddr(address: str) -> str:
    """smtplib.quoteaddr's `<address>`, without its parse (~0.1 ms) for a plain address."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _ok(replies: list[Reply] | BaseException) -> bool:
    """Every reply so far says go on (250 to MAIL, 250/251 to RCPT)."""
    if isinstance(replies, BaseException):
        return False
    return all(code in (250, 251) for code, _ in replies)


def _judge(
    client: smtplib.SMTP, replies: list[Reply] | BaseException
) -> Delivery | BaseException | None:
    if isinstance(replies, BaseException):
        return replies
    codes = [code for code, _ in replies]
    if len(codes) == 3 and codes[2] == 354 and not _ok(replies[:2]):
        # A server that opened DATA after refusing the envelope: end it empty, then refuse.
        try:
            client.send(b".\r\n")
            client.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            return exc
    for step, (code, response) in enumerate(replies):
        wanted = (354,) if step == 2 else (250, 251) if step == 1 else (250,)
        if code not in wanted:
            return _refusal(client, code, response, sender=step == 0)
    return None


def bodies(
    clients: dict[int, smtplib.SMTP], group: Sequence[Outgoing]
) -> list[tuple[int, Delivery]]:
    """Every body, then every reply. Past this point nothing is retried: a failure is LOST."""
    lost: dict[int, Delivery] = {}
    for i, client in clients.items():
        try:
            client.send(_data(group[i].raw))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            lost[i] = Delivery(Outcome.LOST, None, f"connection lost after DATA: {exc}"[:500])
    out: list[tuple[int, Delivery]] = []
    for i, client in clients.items():
        if i in lost:
            out.append((i, lost[i]))
            continue
        try:
            code, response = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            out.append(
                (i, Delivery(Outcome.LOST, None, f"connection lost after DATA: {exc}"[:500]))
            )
            continue
        if code != 250:
            out.append((i, _refusal(client, code, response)))
        else:
            out.append((i, Delivery(Outcome.ACCEPTED, code, f"{code} {_text(response)}"[:500])))
    return out
