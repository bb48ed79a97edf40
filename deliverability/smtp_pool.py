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
from collections.abc import Callable, Collection, Sequence
from typing import cast

from django.db import connection

from deliverability.models import Mailbox
from deliverability.services import mailboxes as service
from deliverability.services.mailbox_probe import StepFailed, open_smtp
from deliverability.smtp_steps import (
    Delivery,
    Outcome,
    Outgoing,
    Stage,
    bodies,
    deliver_once,
    envelopes,
)
from penguinmails.crypto import SecretUnavailable
from tenants.db import TenantConnection
from tenants.models import Tenant

__all__ = ["Delivery", "Outcome", "Outgoing", "SmtpPool", "TRUST_IDLE_SECONDS"]


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

    def _client(self, mailbox: Mailbox) -> tuple[smtplib.SMTP, bool] | Delivery:
        """(the mailbox's connection, whether it was just opened), or why there is none (the
        message is deferred; a failed login counts toward the mailbox's pause)."""
        client = self._connections.get(mailbox.pk)
        fresh = client is None
        idle = time.monotonic() - self._used.get(mailbox.pk, 0.0)
        if client is not None and idle > TRUST_IDLE_SECONDS and not self._alive(client):
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
        return client, fresh

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
            got = self._client(mailbox)
            if isinstance(got, Delivery):
                return got
            client, fresh = got
            try:
                delivery = deliver_once(client, raw, from_addr, to_addr, before_body)
            except Stage as lost:
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

    def deliver_group(
        self,
        group: Sequence[Outgoing],
        before_bodies: Callable[[list[int]], Collection[int]],
        meanwhile: Callable[[], None] | None = None,
    ) -> list[Delivery | None]:
        """Send messages on distinct mailboxes at once, one each, as deliver() does one: every
        step is written to every connection before any reply is read, so the round trips of the
        connections overlap, and where the server offers PIPELINING (RFC 2920) MAIL, RCPT and
        DATA go in one write. `before_bodies(indexes)` runs once, after the 354s and before any
        body, and returns the indexes whose bodies may go: the others are withheld (their
        connections closed mid-DATA, the server drops them) and get None. If it raises, every
        connection at DATA is closed and the exception propagates. `meanwhile` runs once, after
        the first commands are written and before their replies are read: the caller's own
        work (composing the next group) overlaps the servers' answers."""
        if len({out.mailbox.pk for out in group}) != len(group):
            raise ValueError("deliver_group takes one message per mailbox")
        results: list[Delivery | None] = [None] * len(group)
        clients: dict[int, smtplib.SMTP] = {}
        fresh: set[int] = set()
        for i, out in enumerate(group):
            got = self._client(out.mailbox)
            if isinstance(got, Delivery):
                results[i] = got
            else:
                clients[i] = got[0]
                if got[1]:
                    fresh.add(i)
        at_data, again = self._sort(envelopes(clients, group, meanwhile), group, fresh, results)
        try:
            allowed = set(before_bodies(at_data)) if at_data else set()
        except BaseException:
            for i in at_data:
                self._drop(group[i].mailbox.pk)  # mid-DATA: the server discards them
            raise
        for i in at_data:
            if i not in allowed:
                self._drop(group[i].mailbox.pk)
        for i, delivery in bodies({i: clients[i] for i in at_data if i in allowed}, group):
            results[i] = delivery
            if delivery.outcome == Outcome.LOST:
                self._drop(group[i].mailbox.pk)
            else:
                self._used[group[i].mailbox.pk] = time.monotonic()
            if delivery.outcome == Outcome.SENDER_REFUSED:
                self._failed(group[i].mailbox, "send", delivery.response)
        for i in again:
            results[i] = self._deliver_gated(group[i], i, before_bodies)
        return results

    def _sort(
        self,
        staged: dict[int, Delivery | BaseException | None],
        group: Sequence[Outgoing],
        fresh: set[int],
        results: list[Delivery | None],
    ) -> tuple[list[int], list[int]]:
        """(the indexes at DATA, those to try again alone); refusals go into `results`."""
        at_data: list[int] = []
        again: list[int] = []
        for i, step in staged.items():
            mailbox = group[i].mailbox
            if isinstance(step, Delivery):
                results[i] = step
                if step.outcome == Outcome.SENDER_REFUSED:
                    self._failed(mailbox, "send", step.response)
                else:
                    self._used[mailbox.pk] = time.monotonic()
            elif isinstance(step, BaseException):
                # Before DATA: nothing was handed over; a reused connection is tried once more.
                self._drop(mailbox.pk)
                if i in fresh:
                    results[i] = self._send_failed(mailbox, step)
                else:
                    again.append(i)
            else:
                at_data.append(i)
        return at_data, again

    def _send_failed(self, mailbox: Mailbox, exc: BaseException) -> Delivery:
        self._failed(mailbox, "send", f"{type(exc).__name__}: {exc}")
        return Delivery(Outcome.DEFERRED, None, f"{type(exc).__name__}: {exc}"[:500])

    def _deliver_gated(
        self, out: Outgoing, index: int, before_bodies: Callable[[list[int]], Collection[int]]
    ) -> Delivery | None:
        """deliver() of one message of a group, its body gated by `before_bodies([index])`."""

        def gate() -> None:
            if index not in before_bodies([index]):
                raise _Withheld

        try:
            return self.deliver(
                out.raw, mailbox=out.mailbox, from_addr=out.from_addr, to_addr=out.to_addr,
                before_body=gate,
            )  # fmt: skip
        except _Withheld:
            self._drop(out.mailbox.pk)
            return None


# A connection used this recently is trusted without a NOOP: at volume the NOOP would double
# the round trips, and a connection found dead before DATA is reopened and the send repeated.
TRUST_IDLE_SECONDS = 10.0


class _Withheld(Exception):
    """before_bodies() withheld this body."""
