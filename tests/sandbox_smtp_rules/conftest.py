"""One sandbox Dovecot and one sandbox SMTP server delivering into it, for the session.

The Dovecot users are a pool made in one passwd rewrite (each rewrite costs about a second); each
test takes its own sender mailbox so no test reads another's mail. The rule table is a file each
test starts empty, as `manage.py sandbox rule` writes it.
"""

from __future__ import annotations

import email
import itertools
import shutil
import smtplib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import make_msgid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from penguinmails.sandbox.delivery import Delivery
from penguinmails.sandbox.imap import SandboxImap
from penguinmails.sandbox.rules import RuleStore
from penguinmails.sandbox.smtp import start_sandbox_smtp
from penguinmails.sandbox.store import SandboxStore
from tests.dovecot import running_dovecot

SENDERS = {f"sender{n}@mail.acme.test": f"secret-{n}" for n in range(30)}
PEOPLE = {f"person{n}@sandbox.test": f"pw-{n}" for n in range(10)}
USER, PASSWORD = "sandbox", "sandbox-pw"
VERP_TOKEN = "b-aaaaadqaaaaaaaaaaaawh6ir6i65fsumwgpa"
_next_sender = itertools.count()
_next_person = itertools.count()


@dataclass
class World:
    imap: SandboxImap
    smtp: Controller
    rules: RuleStore
    rules_path: Path
    maildir: Path

    @property
    def store(self) -> SandboxStore:
        return SandboxStore(self.maildir)

    def send(
        self, mail_from: str, rcpt: str | list[str], message: EmailMessage
    ) -> dict[str, tuple[int, bytes]]:
        """smtplib's sendmail: the refused recipients (raises when all are refused)."""
        with smtplib.SMTP(self.smtp.hostname, self.smtp.port, timeout=20) as client:
            client.login(USER, PASSWORD)
            return client.sendmail(mail_from, rcpt, message.as_bytes())

    def inbox(self, address: str) -> list[Message]:
        """The messages in `address`'s Dovecot INBOX, oldest first."""
        client = self.imap.connect(address)
        try:
            client.select("INBOX", readonly=True)
            _, found = client.uid("SEARCH", "ALL")
            messages = []
            for uid in found[0].split():
                _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next(item[1] for item in data if isinstance(item, tuple))
                messages.append(email.message_from_bytes(raw))
            return messages
        finally:
            client.logout()


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    with running_dovecot({**SENDERS, **PEOPLE}) as imap:
        base = Path(tempfile.mkdtemp(prefix="pm-smtp-rules-"))
        rules_path = base / "sandbox-rules.json"
        rules = RuleStore(rules_path)
        controller = start_sandbox_smtp(
            "127.0.0.1",
            0,
            base / "mail",
            user=USER,
            password=PASSWORD,
            delivery=Delivery(imap, RuleStore(rules_path)),
        )
        try:
            yield World(imap, controller, rules, rules_path, base / "mail")
        finally:
            controller.stop()
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sandbox(world: World) -> Iterator[World]:
    world.rules_path.unlink(missing_ok=True)
    yield world
    world.rules_path.unlink(missing_ok=True)


@pytest.fixture
def sender() -> str:
    """A sending mailbox (a Dovecot user) no other test uses."""
    return f"sender{next(_next_sender)}@mail.acme.test"


@pytest.fixture
def person() -> str:
    """A receiving mailbox (a Dovecot user) no other test uses."""
    return f"person{next(_next_person)}@sandbox.test"


def verp(mailbox: str) -> str:
    local, _, domain = mailbox.partition("@")
    return f"{local}+{VERP_TOKEN}@{domain}"


def campaign_message(sender: str, to: str, subject: str = "Quick question") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Sam Sender <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="mail.acme.test")
    message.set_content("Hi there,\n\nWould you like to hear about penguins?\n\nSam\n")
    return message


__all__ = ["World", "campaign_message", "verp"]
