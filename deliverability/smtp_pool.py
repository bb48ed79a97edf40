"""The workers' SMTP connection pool: persistent authenticated connections per mailbox.

A worker sending a campaign builds one `SmtpPool` over the mailboxes of that campaign and calls
`deliver()` per message. Opening a connection costs a TCP and TLS handshake and an AUTH (and
providers rate-limit logins), so each mailbox keeps one open connection across sends, checked
with NOOP before reuse (servers drop idle connections after a minute or so) and reopened when
the check or a send finds it gone. The caller picks the mailbox of each message and records the
sends; `PAUSE_AFTER_FAILURES` failed sends in a row pause a mailbox through the service (the
reason is shown and recorded).

One pool per worker thread: smtplib connections are not thread-safe.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from django.db import connection

from deliverability.models import Mailbox
from deliverability.services import mailboxes as service
from deliverability.services.mailbox_probe import StepFailed, open_smtp
from penguinmails.crypto import SecretUnavailable
from tenants.db import TenantConnection
from tenants.models import Tenant


class SmtpPool:
    """Connections for a set of one tenant's mailboxes (use as a context manager)."""

    def __init__(
        self,
        *,
        tenant: Tenant,
        mailbox_ids: Sequence[int],
        pause_after: int = service.PAUSE_AFTER_FAILURES,
        timeout: float = 30.0,
    ) -> None:
        schema = cast(TenantConnection, connection).schema_name
        if schema != tenant.schema_name:
            raise RuntimeError(f"SmtpPool for {tenant.slug} built in {schema!r}")
        self.tenant = tenant
        self.mailbox_ids = list(dict.fromkeys(mailbox_ids))
        self.pause_after = pause_after
        self.timeout = timeout
        self._connections: dict[int, smtplib.SMTP] = {}
        self.opened = 0  # connections opened (reuse shows as few opens for many sends)
        self._used: dict[int, float] = {}  # mailbox id -> monotonic time of its last send

    def __enter__(self) -> SmtpPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for mailbox_id in list(self._connections):
            self._drop(mailbox_id, polite=True)

    # --- connections ---------------------------------------------------------------------------
    def _drop(self, mailbox_id: int, *, polite: bool = False) -> None:
        client = self._connections.pop(mailbox_id, None)
        if client is None:
            return
        try:
            if polite:
                client.quit()
            else:
                client.close()
        except (smtplib.SMTPException, OSError):
            client.close()

    def _alive(self, client: smtplib.SMTP) -> bool:
        try:
            code, _ = client.noop()
        except (smtplib.SMTPException, OSError):
            return False
        return code == 250

    def connection_for(self, mailbox: Mailbox) -> smtplib.SMTP:
        """The mailbox's open connection if NOOP says it is alive, else a new one. Raises
        StepFailed (connect/TLS/auth) or SecretUnavailable (mailbox marked unusable)."""
        client = self._connections.get(mailbox.pk)
        if client is not None:
            if self._alive(client):
                return client
            self._drop(mailbox.pk)
        smtp, _ = service.endpoints(mailbox)
        client = open_smtp(smtp, timeout=self.timeout)
        self._connections[mailbox.pk] = client
        self.opened += 1
        return client

    # --- sending -------------------------------------------------------------------------------
    def _failed(self, mailbox: Mailbox, step: str, error: str) -> bool:
        """Count a failed send toward the mailbox's pause; True when this one paused it."""
        paused = service.record_send_failure(
            mailbox.pk, step=step, error=error, pause_after=self.pause_after
        )
        if paused:
            self._drop(mailbox.pk)
        return paused

    def deliver(
        self,
        raw: bytes,
        *,
        mailbox: Mailbox,
        from_addr: str,
        to_addr: str,
        before_body: Callable[[], None] | None = None,
    ) -> Delivery:
        """Send one flattened message to one recipient over the mailbox's reused connection. Counts
        nothing in the database: the caller records a batch's sends at once. A connection failure
        counts toward the mailbox's pause (`record_send_failure`) and defers the message.

        `before_body` runs after the server's 354 and before the first byte of the body: the
        campaign sender records there that the server may get the message. If it raises, the
        connection is closed without the body (the server drops the transaction) and the
        exception propagates."""
        for attempt in (1, 2):
            client = self._connections.get(mailbox.pk)
            fresh = client is None
            if client is not None and time.monotonic() - self._used.get(mailbox.pk, 0.0) > (
                TRUST_IDLE_SECONDS
            ):
                if not self._alive(client):
                    self._drop(mailbox.pk)
                    client = None
            if client is None:
                try:
                    client = self.connection_for(mailbox)
                except SecretUnavailable as exc:
                    return Delivery(Outcome.DEFERRED, None, exc.message[:500])
                except StepFailed as failed:
                    step, error = str(failed.result.step), failed.result.message
                    self._failed(mailbox, step, error)
                    return Delivery(Outcome.DEFERRED, None, f"{step}: {error}"[:500])
                fresh = True
            try:
                delivery = _deliver_once(client, raw, from_addr, to_addr, before_body)
            except _Stage as lost:
                self._drop(mailbox.pk)
                return lost.delivery
            except (smtplib.SMTPException, OSError) as exc:
                # Before DATA: nothing was handed over, a new connection may try again.
                self._drop(mailbox.pk)
                if attempt == 1 and not fresh:
                    continue
                self._failed(mailbox, "send", f"{type(exc).__name__}: {exc}")
                return Delivery(Outcome.DEFERRED, None, f"{type(exc).__name__}: {exc}"[:500])
            self._used[mailbox.pk] = time.monotonic()
            if delivery.outcome == Outcome.SENDER_REFUSED:
                self._failed(mailbox, "send", delivery.response)
            return delivery
        raise AssertionError("unreachable")  # pragma: no cover


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


# A connection used this recently is trusted without a NOOP: at volume the NOOP would double
# the round trips, and a connection found dead before DATA is reopened and the send repeated.
TRUST_IDLE_SECONDS = 10.0


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


class _Stage(Exception):
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery


def _deliver_once(
    client: smtplib.SMTP,
    raw: bytes,
    from_addr: str,
    to_addr: str,
    before_body: Callable[[], None] | None = None,
) -> Delivery:
    """MAIL, RCPT, DATA one step at a time (smtplib's sendmail hides where a failure happened).
    Raises SMTPServerDisconnected/OSError only before the message body went out."""

    def refuse(code: int, response: bytes, *, sender: bool = False) -> Delivery:
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            pass
        text = f"{code} {_text(response)}"[:500]
        if 400 <= code < 500:
            return Delivery(Outcome.DEFERRED, code, text)
        return Delivery(Outcome.SENDER_REFUSED if sender else Outcome.REFUSED, code, text)

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
    # Dot-stuffing, as smtplib.SMTP.data() does.
    body = smtplib._quote_periods(raw)  # type: ignore[attr-defined]
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    try:
        client.send(body + b".\r\n")
        code, response = client.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # The server may have the whole message: whether it was accepted cannot be known.
        lost = Delivery(Outcome.LOST, None, f"connection lost after DATA: {exc}"[:500])
        raise _Stage(lost) from exc
    if code != 250:
        return refuse(code, response)
    return Delivery(Outcome.ACCEPTED, code, f"{code} {_text(response)}"[:500])
