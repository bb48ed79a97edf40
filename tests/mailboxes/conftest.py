"""Fixtures for mailboxes: the real sandbox SMTP server and the real sandbox IMAP server (a private
Dovecot, tests/dovecot.py) on free loopback ports, with the credentials a connected mailbox uses,
and helpers to connect one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django_tenants.utils import schema_context

from deliverability.models import Mailbox
from deliverability.services import mailboxes as svc
from penguinmails.sandbox.imap import SandboxImap
from penguinmails.sandbox.smtp import start_sandbox_smtp
from tenants.models import Tenant, User
from tests.domains.conftest import principal
from tests.dovecot import LoginLog, running_dovecot

USER = "jane@acme-mail.test"
PASSWORD = "app-password-1"


@dataclass
class Smtp:
    controller: Controller
    maildir: Path
    peers: list[Any] = field(default_factory=list)  # one entry per EHLO (connection)
    transports: list[Any] = field(default_factory=list)
    stopped: bool = False

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.controller.stop()

    def drop_connections(self) -> None:
        """Close every client connection from the server side (an idle timeout, a restart)."""
        for transport in self.transports:
            self.controller.loop.call_soon_threadsafe(transport.close)


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Smtp]:
    controller = start_sandbox_smtp(
        "127.0.0.1", 0, tmp_path / "maildir", user=USER, password=PASSWORD
    )
    smtp = Smtp(controller, tmp_path / "maildir")

    async def handle_EHLO(
        server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        smtp.peers.append(session.peer)
        smtp.transports.append(server.transport)
        return responses

    controller.handler.handle_EHLO = handle_EHLO
    yield smtp
    smtp.stop()


@dataclass
class Imap:
    """The session's Dovecot as one test sees it: the logins since the test began, and USER's
    password, which a test may change (another client rotating it) and is restored after."""

    server: SandboxImap
    log: LoginLog

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def logins(self) -> list[tuple[str, bool]]:
        return self.log.logins()

    @property
    def password(self) -> str:
        return self.server.users()[USER]

    @password.setter
    def password(self, value: str) -> None:
        self.server.add_user(USER, value)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[SandboxImap]:
    with running_dovecot({USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def imap_server(dovecot: SandboxImap) -> Iterator[Imap]:
    imap = Imap(dovecot, LoginLog(dovecot))
    yield imap
    if imap.password != PASSWORD:
        imap.password = PASSWORD


def connect_form(smtp: Smtp, imap: Imap, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "address": USER,
        "kind": "google",
        "display_name": "Jane Doe",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "imap_host": "127.0.0.1",
        "imap_port": imap.port,
        "imap_security": "none",
        "imap_username": USER,
        "imap_password": PASSWORD,
    }
    form.update(overrides)
    return form


def connect(tenant: Tenant, user: User, smtp: Smtp, imap: Imap, **overrides: Any) -> Mailbox:
    with schema_context(tenant.schema_name):
        return svc.connect_mailbox(principal(tenant, user), **connect_form(smtp, imap, **overrides))


def mailboxes_in(tenant: Tenant) -> list[Mailbox]:
    with schema_context(tenant.schema_name):
        return list(Mailbox.objects.all())


def mailbox_in(tenant: Tenant, address: str = USER) -> Mailbox:
    with schema_context(tenant.schema_name):
        return Mailbox.objects.get(address=address)
