"""The sandbox SMTP server: a loopback stand-in for Mailu's authenticated submission port.

It speaks real SMTP (aiosmtpd), refuses MAIL before AUTH (530) and bad credentials (535), and
keeps every message it accepts in a Maildir, with the envelope recorded in two headers added on
top, because the envelope often differs from the From/To headers (Bcc, bounces, VERP).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import mailbox
import socket
import warnings
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

if TYPE_CHECKING:
    from penguinmails.sandbox.delivery import Delivery

ENVELOPE_FROM_HEADER = "X-Sandbox-Envelope-From"
ENVELOPE_TO_HEADER = "X-Sandbox-Envelope-To"
RECEIVED_AT_HEADER = "X-Sandbox-Received-At"


class _LoopbackAuthWarningFilter(logging.Filter):
    """aiosmtpd warns on every connection that AUTH without TLS is unsafe. It is deliberate here:
    the server listens on loopback only (the command refuses anything else)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "auth_require_tls == False" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_LoopbackAuthWarningFilter())


class _Controller(Controller):
    def factory(self) -> SMTP:
        # The same warning, also raised as a UserWarning (see _LoopbackAuthWarningFilter).
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning
            )
            return super().factory()


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def match(self, login: bytes, password: bytes) -> bool:
        # Both compared in constant time so a wrong user and a wrong password look alike.
        user_ok = hmac.compare_digest(login, self.user.encode())
        password_ok = hmac.compare_digest(password, self.password.encode())
        return user_ok and password_ok


class CredentialsAuthenticator:
    """aiosmtpd authenticator accepting one user/password pair over PLAIN or LOGIN."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        if not self.credentials.match(auth_data.login, auth_data.password):
            return AuthResult(success=False, handled=False)
        # Saved as session.auth_data: who logged in (the password is not kept).
        return AuthResult(success=True, auth_data=auth_data.login)


AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"


class MaildirHandler:
    """Stores each accepted message in a Maildir, envelope headers prepended; given a Delivery
    (penguinmails.sandbox.delivery), also answers RCPT by its rules and delivers into Dovecot."""

    def __init__(self, maildir: Path, delivery: Delivery | None = None) -> None:
        self.maildir = Path(maildir)
        self.delivery = delivery
        # Creating the Maildir up front makes a bad path fail at start-up, not at first message.
        self._box = open_maildir(self.maildir)

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> str | None:
        """AUTH, recorded in session.authenticated and session.auth_data (aiosmtpd's AUTH
        handler hook). The mechanism is aiosmtpd's own PLAIN or LOGIN, which asks the
        authenticator above; smtp_AUTH has already answered 504 to any other.

        aiosmtpd's default outcome handling would do the same, but it also writes the deprecated
        Session.login_data, which logs "Session.login_data is deprecated" on every login
        (aio-libs/aiosmtpd#347); this hook never touches it.
        """
        mechanism = getattr(server, f"auth_{args[0]}")
        result: AuthResult = await mechanism(server, args)
        if result.success:
            session.authenticated = True
            session.auth_data = result.auth_data
            return result.message or AUTH_OK
        if result.handled:
            return None  # the mechanism has replied already (a bad base64 answer, say)
        return result.message or AUTH_INVALID

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """What aiosmtpd does without this hook, unless the Delivery's rules refuse the address
        (defer 451, reject 550), as a receiving server would."""
        if self.delivery is not None and (refusal := self.delivery.refusal(address)):
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        key = self._capture(envelope, raw)
        if self.delivery is not None:
            # IMAP APPENDs block: in a thread, done before the 250 so a test (or the poller)
            # finds the message in Dovecot once the send returns.
            await asyncio.get_running_loop().run_in_executor(
                None, self.delivery.deliver, envelope.mail_from or "", list(envelope.rcpt_tos), raw
            )
        return f"250 2.0.0 Ok: queued as {key}"

    def _capture(self, envelope: Envelope, raw: bytes) -> str:
        # Header values are ASCII-safe: addresses were already accepted by the SMTP parser.
        trace = (
            f"{ENVELOPE_FROM_HEADER}: <{envelope.mail_from or ''}>\r\n"
            f"{ENVELOPE_TO_HEADER}: {', '.join(f'<{r}>' for r in envelope.rcpt_tos)}\r\n"
            f"{RECEIVED_AT_HEADER}: {formatdate(usegmt=True)}\r\n"
        ).encode("utf-8", "replace")
        # Bytes, not a MaildirMessage: that would parse and regenerate every message (the
        # sandbox's main cost under load); Maildir stores bytes as they are, in new/.
        try:
            key = self._box.add(trace + raw)
        except FileNotFoundError:
            # The folders were removed under us (a cleanup): make them again, as at start-up.
            self._box = open_maildir(self.maildir)
            key = self._box.add(trace + raw)
        return str(key)


def open_maildir(path: Path) -> mailbox.Maildir:
    """The Maildir at `path`, with its tmp/new/cur folders made if missing.

    mailbox.Maildir(create=True) only makes them when the top folder does not exist yet, so a
    folder created by hand (or emptied by a cleanup) would break delivery.
    """
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(str(path), create=False)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (aiosmtpd's controller cannot listen on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def start_sandbox_smtp(
    host: str,
    port: int,
    maildir: Path | str,
    *,
    user: str | None = None,
    password: str | None = None,
    delivery: Delivery | None = None,
) -> Controller:
    """Start the server in a background thread and return its controller (`.stop()` ends it).

    `port=0` picks a free port; read it back from `controller.port`. Credentials default to
    settings.SANDBOX_SMTP_USER / SANDBOX_SMTP_PASSWORD. With a `delivery`, accepted mail also
    goes into Dovecot and the rule table answers (penguinmails.sandbox.delivery).
    """
    if user is None or password is None:
        from django.conf import settings

        user = settings.SANDBOX_SMTP_USER if user is None else user
        password = settings.SANDBOX_SMTP_PASSWORD if password is None else password
    if port == 0:
        port = free_port(host)
    controller = _Controller(
        MaildirHandler(Path(maildir), delivery),
        hostname=host,
        port=port,
        authenticator=CredentialsAuthenticator(Credentials(user, password)),
        auth_required=True,
        # Loopback only, like Mailu's submission port behind its own TLS: no STARTTLS here.
        auth_require_tls=False,
        ident="PenguinMails sandbox SMTP",
    )
    controller.start()
    return controller
