"""Live connection tests of a mailbox's SMTP and IMAP servers, step by step.

Each probe walks the steps a sender goes through (resolve the name and vet it with the outbound
connection guard, penguinmails/netguard.py; open the connection to the vetted address; negotiate
TLS as chosen, against the name; authenticate) and stops at the first that fails, so the report
can say *which* step failed in words a person can act on: "wrong password" and "wrong port" and
"TLS mismatch" are different fixes. Passwords are sent to the server and nowhere else: never in
a message, log or exception text.
"""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from deliverability.models import Security
from penguinmails import netguard

DEFAULT_TIMEOUT = 10.0


class Step(StrEnum):
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    AUTH = "auth"
    OK = "ok"


@dataclass(frozen=True)
class ProbeResult:
    """One protocol's outcome: `step` is where it stopped (OK when it all passed)."""

    protocol: str  # "smtp" | "imap"
    ok: bool
    step: Step
    message: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["step"] = str(self.step)
        return data


@dataclass(frozen=True)
class ConnectionReport:
    """SMTP and (when configured) IMAP results of one connection test."""

    smtp: ProbeResult
    imap: ProbeResult | None

    @property
    def ok(self) -> bool:
        return self.smtp.ok and (self.imap is None or self.imap.ok)

    @property
    def failure(self) -> ProbeResult | None:
        for result in (self.smtp, self.imap):
            if result is not None and not result.ok:
                return result
        return None

    def summary(self) -> str:
        failed = self.failure
        if failed is None:
            return "SMTP and IMAP connections work." if self.imap else "SMTP connection works."
        return f"{failed.protocol.upper()} {failed.step} failed: {failed.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "smtp": self.smtp.as_dict(),
            "imap": self.imap.as_dict() if self.imap else None,
        }


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str
    username: str
    password: str


# --- the outbound connection guard (penguinmails/netguard.py) ------------------------------------
def _ports(protocol: str) -> frozenset[int]:
    return netguard.smtp_ports() if protocol == "smtp" else netguard.imap_ports()


def _refusal(protocol: str, ep: Endpoint, refused: netguard.Refused) -> ProbeResult:
    if refused.reason == netguard.Reason.PORT:
        words = netguard.port_message(_ports(protocol)).replace("This port", f"Port {ep.port}")
        return ProbeResult(protocol, False, Step.CONNECT, f"{words[:-1]} for {protocol.upper()}.")
    message = {
        netguard.Reason.UNRESOLVED: f"{ep.host} does not resolve: check the server name.",
        netguard.Reason.DNS_FAILED: (
            f"{ep.host} does not resolve just now (the DNS servers did not answer): try again."
        ),
        netguard.Reason.INVALID: f"{ep.host!r} is not a server name: check it.",
    }.get(
        refused.reason,
        f"{ep.host} is not allowed: a mail server must have a public internet address "
        "(not a private, loopback, link-local or reserved one).",
    )
    return ProbeResult(protocol, False, Step.DNS, message)


def _resolve(protocol: str, ep: Endpoint) -> netguard.Target | ProbeResult:
    """The vetted addresses to connect to, or the refusal. Runs before every connection, not
    only when the mailbox is saved: the name may point elsewhere by now."""
    try:
        return netguard.resolve_public(ep.host, ep.port, ports=_ports(protocol))
    except netguard.Refused as refused:
        return _refusal(protocol, ep, refused)


def vet_servers(
    *, smtp_host: str, smtp_port: object, imap_host: str, imap_port: object
) -> dict[str, list[str]]:
    """Form and serializer validation of user-given servers: {field: [message]} for each the
    guard refuses (nothing is contacted, so the answer never depends on what listens there)."""
    errors: dict[str, list[str]] = {}
    for protocol, host, port in (("smtp", smtp_host, smtp_port), ("imap", imap_host, imap_port)):
        if not host or not isinstance(port, int):
            continue  # missing values are the required-field checks' business
        try:
            netguard.resolve_public(host, port, ports=_ports(protocol))
        except netguard.Refused as refused:
            field = "port" if refused.reason == netguard.Reason.PORT else "host"
            errors[f"{protocol}_{field}"] = [refused.message]
    return errors


# Connections go to the vetted addresses, never to the name (a second resolution could answer
# differently); the name stays the TLS server_hostname, so certificates are checked against it.
class _PinnedSmtp(smtplib.SMTP):
    def __init__(self, target: netguard.Target, *, timeout: float) -> None:
        self._target = target
        super().__init__(target.host, target.port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return netguard.connect(self._target, timeout=timeout)


class _PinnedSmtpSsl(smtplib.SMTP_SSL, _PinnedSmtp):
    # SMTP_SSL._get_socket wraps what super()._get_socket (the pinned one) returns.
    def __init__(self, target: netguard.Target, *, timeout: float, context: ssl.SSLContext) -> None:
        self._target = target
        smtplib.SMTP_SSL.__init__(self, target.host, target.port, timeout=timeout, context=context)


class _PinnedImap(imaplib.IMAP4):
    def __init__(self, target: netguard.Target, *, timeout: float) -> None:
        self._target = target
        super().__init__(target.host, target.port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return netguard.connect(self._target, timeout=timeout)


class _PinnedImapSsl(imaplib.IMAP4_SSL):
    def __init__(
        self, target: netguard.Target, *, timeout: float, ssl_context: ssl.SSLContext
    ) -> None:
        self._target = target
        self._context = ssl_context
        super().__init__(target.host, target.port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = netguard.connect(self._target, timeout=timeout)
        return self._context.wrap_socket(sock, server_hostname=self.host)


def _connect_failure(protocol: str, ep: Endpoint, exc: BaseException) -> ProbeResult:
    if isinstance(exc, ssl.SSLError):
        return _tls_failure(protocol, ep, exc)
    if isinstance(exc, TimeoutError | socket.timeout):
        why = "timed out"
    elif isinstance(exc, ConnectionRefusedError):
        why = "refused the connection"
    else:
        why = f"could not be reached ({type(exc).__name__})"
    return ProbeResult(
        protocol,
        False,
        Step.CONNECT,
        f"{ep.host}:{ep.port} {why}: check the port and that the server accepts connections "
        "from us.",
    )


def _tls_failure(protocol: str, ep: Endpoint, exc: BaseException) -> ProbeResult:
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = f"its certificate is not valid for {ep.host} ({exc.verify_message})"
    elif ep.security == Security.SSL:
        detail = (
            "it does not speak TLS on this port; choose STARTTLS (or the provider's SSL port, "
            "465 for SMTP, 993 for IMAP)"
        )
    else:
        detail = f"the TLS handshake failed ({getattr(exc, 'reason', None) or 'no reason given'})"
    return ProbeResult(protocol, False, Step.TLS, f"TLS with {ep.host}:{ep.port} failed: {detail}.")


def _tls_context() -> ssl.SSLContext:
    # Verified: a provider's password must not be sent to whoever answers on the port.
    return ssl.create_default_context()


class StepFailed(Exception):
    """Opening a connection stopped at `result.step` (for callers that keep the connection)."""

    def __init__(self, result: ProbeResult) -> None:
        super().__init__(result.message)
        self.result = result


def open_smtp(ep: Endpoint, *, timeout: float = DEFAULT_TIMEOUT) -> smtplib.SMTP:
    """An authenticated SMTP connection (TLS as `ep.security` says), or StepFailed naming the
    step that failed. The SMTP pool keeps these open across sends."""
    target = _resolve("smtp", ep)
    if isinstance(target, ProbeResult):
        raise StepFailed(target)
    client: smtplib.SMTP
    try:
        if ep.security == Security.SSL:
            client = _PinnedSmtpSsl(target, timeout=timeout, context=_tls_context())
        else:
            client = _PinnedSmtp(target, timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
            raise StepFailed(
                ProbeResult(
                    "smtp",
                    False,
                    Step.CONNECT,
                    f"{ep.host}:{ep.port} closed the connection without an SMTP greeting: "
                    "check the port.",
                )
            ) from None
        raise StepFailed(_connect_failure("smtp", ep, exc)) from None
    try:
        _smtp_tls_and_auth(client, ep)
    except BaseException:
        _close_smtp(client)
        raise
    return client


def _smtp_tls_and_auth(client: smtplib.SMTP, ep: Endpoint) -> None:
    try:
        client.ehlo()
        if ep.security == Security.STARTTLS:
            if not client.has_extn("starttls"):
                raise StepFailed(
                    ProbeResult(
                        "smtp",
                        False,
                        Step.TLS,
                        f"{ep.host}:{ep.port} does not offer STARTTLS: choose SSL/TLS "
                        "(usually port 465) or the provider's STARTTLS port (587).",
                    )
                )
            client.starttls(context=_tls_context())
            client.ehlo()
    except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
        raise StepFailed(_tls_failure("smtp", ep, exc)) from None
    if not ep.username:
        # Never stored by the dashboard or the API (they default it to the address): a relay
        # that trusts the sender's network, as bench/send.py's smtp-sink (whose AUTH reply is
        # 250, not the 235 smtplib wants).
        return
    try:
        client.login(ep.username, ep.password)
    except smtplib.SMTPNotSupportedError:
        raise StepFailed(
            ProbeResult(
                "smtp",
                False,
                Step.AUTH,
                f"{ep.host}:{ep.port} does not offer AUTH here; it may require TLS first.",
            )
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise StepFailed(
            ProbeResult(
                "smtp",
                False,
                Step.AUTH,
                f"{ep.host} refused the username or password ({exc.smtp_code}). For Google "
                "Workspace or Microsoft 365 use an app password.",
            )
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise StepFailed(
            ProbeResult("smtp", False, Step.AUTH, f"Authentication failed ({type(exc).__name__}).")
        ) from None


def _close_smtp(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def probe_smtp(ep: Endpoint, *, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Connect, negotiate TLS as `ep.security` says, AUTH; QUIT. Stops at the first failure."""
    try:
        client = open_smtp(ep, timeout=timeout)
    except StepFailed as failed:
        return failed.result
    _close_smtp(client)
    return ProbeResult("smtp", True, Step.OK, "Authenticated.")


def open_imap(ep: Endpoint, *, timeout: float = DEFAULT_TIMEOUT) -> imaplib.IMAP4:
    """A logged-in IMAP connection (TLS as `ep.security` says), or StepFailed naming the step
    that failed. The inbound poller reads mailboxes through it."""
    target = _resolve("imap", ep)
    if isinstance(target, ProbeResult):
        raise StepFailed(target)
    client: imaplib.IMAP4
    try:
        if ep.security == Security.SSL:
            client = _PinnedImapSsl(target, timeout=timeout, ssl_context=_tls_context())
        else:
            client = _PinnedImap(target, timeout=timeout)
    except imaplib.IMAP4.error:
        raise StepFailed(
            ProbeResult(
                "imap",
                False,
                Step.CONNECT,
                f"{ep.host}:{ep.port} did not greet like an IMAP server: check the port.",
            )
        ) from None
    except OSError as exc:
        raise StepFailed(_connect_failure("imap", ep, exc)) from None
    try:
        _imap_tls_and_login(client, ep)
    except BaseException:
        close_imap(client)
        raise
    return client


def _imap_tls_and_login(client: imaplib.IMAP4, ep: Endpoint) -> None:
    if ep.security == Security.STARTTLS:
        try:
            client.starttls(ssl_context=_tls_context())
        except (ssl.SSLError, OSError) as exc:
            raise StepFailed(_tls_failure("imap", ep, exc)) from None
        except imaplib.IMAP4.error:
            raise StepFailed(
                ProbeResult(
                    "imap",
                    False,
                    Step.TLS,
                    f"{ep.host}:{ep.port} does not offer STARTTLS: choose SSL/TLS (usually "
                    "port 993).",
                )
            ) from None
    try:
        client.login(ep.username, ep.password)
    except imaplib.IMAP4.error:
        raise StepFailed(
            ProbeResult(
                "imap",
                False,
                Step.AUTH,
                f"{ep.host} refused the username or password. For Google Workspace or "
                "Microsoft 365 use an app password, and check IMAP is enabled.",
            )
        ) from None
    except OSError as exc:
        raise StepFailed(
            ProbeResult("imap", False, Step.AUTH, f"Authentication failed ({type(exc).__name__}).")
        ) from None


def close_imap(client: imaplib.IMAP4) -> None:
    try:
        client.logout()
    except (imaplib.IMAP4.error, OSError):
        pass


def probe_imap(ep: Endpoint, *, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Connect, negotiate TLS as `ep.security` says, LOGIN; LOGOUT. Stops at the first failure."""
    try:
        client = open_imap(ep, timeout=timeout)
    except StepFailed as failed:
        return failed.result
    close_imap(client)
    return ProbeResult("imap", True, Step.OK, "Logged in.")


def probe(
    smtp: Endpoint, imap: Endpoint | None, *, timeout: float = DEFAULT_TIMEOUT
) -> ConnectionReport:
    """Both probes; IMAP is tried even when SMTP failed, so one test shows every problem."""
    return ConnectionReport(
        smtp=probe_smtp(smtp, timeout=timeout),
        imap=probe_imap(imap, timeout=timeout) if imap is not None else None,
    )
