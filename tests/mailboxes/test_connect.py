"""Connecting an external mailbox: the live SMTP + IMAP test against real local servers, what
each failing step reports, encryption at rest, a lost key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django_tenants.utils import schema_context

from deliverability.models import MailboxStatus
from deliverability.services import mailboxes as svc
from penguinmails import states
from penguinmails.crypto import SecretUnavailable
from tests.conftest import Cast
from tests.domains.conftest import principal
from tests.mailboxes.conftest import PASSWORD, Imap, Smtp, connect, mailbox_in, mailboxes_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_connects_after_a_live_test_and_stores_the_password_encrypted(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    mailbox = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    assert mailbox.status == MailboxStatus.ACTIVE
    assert mailbox.daily_limit == svc.DEFAULT_DAILY_LIMIT
    assert imap_server.logins == [("jane@acme-mail.test", True)]
    with schema_context(cast.tenant.schema_name):
        with connection.cursor() as cursor:
            cursor.execute("SELECT smtp_password, imap_password FROM deliverability_mailbox")
            stored = cursor.fetchone()
        transitions = [(t.from_status, t.to_status) for t in states.history(mailbox)]
    assert PASSWORD not in "".join(stored) and all(s.startswith("gAAAA") for s in stored)
    assert transitions == [("pending", "active")]
    assert mailbox_in(cast.tenant).smtp_password.reveal() == PASSWORD


@pytest.mark.parametrize(
    ("overrides", "protocol", "step", "words"),
    [
        (
            {"smtp_password": "wrong", "imap_password": PASSWORD},
            "smtp",
            "auth",
            "refused the username or password",
        ),
        ({"imap_password": "wrong"}, "imap", "auth", "refused the username or password"),
        ({"smtp_security": "ssl"}, "smtp", "tls", "does not speak TLS on this port"),
        ({"smtp_security": "starttls"}, "smtp", "tls", "does not offer STARTTLS"),
        ({"imap_security": "starttls"}, "imap", "tls", "does not offer STARTTLS"),
        ({"smtp_host": "no-such-host.invalid"}, "smtp", "dns", "does not resolve"),
    ],
)
def test_it_reports_the_failing_step_and_saves_nothing(
    cast: Cast,
    smtp_server: Smtp,
    imap_server: Imap,
    overrides: dict[str, str],
    protocol: str,
    step: str,
    words: str,
) -> None:
    with pytest.raises(svc.ConnectionFailed) as caught:
        connect(cast.tenant, cast.owner, smtp_server, imap_server, **overrides)
    failure = caught.value.report.failure
    assert failure is not None
    assert (failure.protocol, str(failure.step)) == (protocol, step)
    assert words in failure.message and words in caught.value.message
    assert PASSWORD not in caught.value.message and "wrong" not in caught.value.message
    assert mailboxes_in(cast.tenant) == []


def test_it_reports_connect_for_a_closed_port(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    from penguinmails.sandbox.smtp import free_port

    with pytest.raises(svc.ConnectionFailed) as caught:
        connect(cast.tenant, cast.owner, smtp_server, imap_server, smtp_port=free_port())
    assert caught.value.report.smtp.step == "connect"
    assert "refused the connection" in caught.value.report.smtp.message
    assert caught.value.report.imap is not None and caught.value.report.imap.ok
    assert mailboxes_in(cast.tenant) == []


def test_it_marks_the_mailbox_unusable_when_no_key_opens_its_password(
    cast: Cast, smtp_server: Smtp, imap_server: Imap, settings: object
) -> None:
    connect(cast.tenant, cast.owner, smtp_server, imap_server)
    mailbox = mailbox_in(cast.tenant)  # as stored: the token, not the plaintext entered
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # type: ignore[attr-defined]
    with schema_context(cast.tenant.schema_name):
        with pytest.raises(SecretUnavailable) as caught:
            svc.test_mailbox(principal(cast.tenant, cast.owner), mailbox)
    assert "FIELD_ENCRYPTION_KEYS" in caught.value.message
    assert "jane@acme-mail.test" in caught.value.message
    after = mailbox_in(cast.tenant)
    assert after.status == MailboxStatus.UNUSABLE
    assert "cannot be decrypted" in after.status_reason


def test_it_moves_a_mailbox_to_failing_on_a_failed_test_and_back_on_a_pass(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    mailbox = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    imap_server.password = "changed"
    with schema_context(cast.tenant.schema_name):
        report = svc.test_mailbox(principal(cast.tenant, cast.admin), mailbox)
    assert not report.ok and mailbox.status == MailboxStatus.FAILING
    assert mailbox_in(cast.tenant).last_error_step == "auth"
    imap_server.password = PASSWORD
    with schema_context(cast.tenant.schema_name):
        assert svc.test_mailbox(principal(cast.tenant, cast.admin), mailbox).ok
    after = mailbox_in(cast.tenant)
    assert after.status == MailboxStatus.ACTIVE and after.last_test_ok and not after.last_error
