"""`manage.py secrets rotate` with two real Fernet keys: everything re-encrypted with the new
key, old key then removable; a value no key opens is reported and its mailbox marked unusable."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from deliverability.models import MailboxStatus
from deliverability.services import mailboxes as svc
from tests.conftest import Cast
from tests.domains.conftest import principal
from tests.mailboxes.conftest import PASSWORD, Imap, Smtp, connect, mailbox_in

pytestmark = pytest.mark.django_db(transaction=True)


def _tokens(cast: Cast) -> list[str]:
    with schema_context(cast.tenant.schema_name), connection.cursor() as cursor:
        cursor.execute(
            "SELECT smtp_password, imap_password FROM deliverability_mailbox ORDER BY id"
        )
        return [t for row in cursor.fetchall() for t in row]


def test_it_rotates_every_secret_from_the_old_key_to_the_new(
    cast: Cast, smtp_server: Smtp, imap_server: Imap, settings: Any
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    connect(cast.tenant, cast.owner, smtp_server, imap_server)
    connect(cast.tenant, cast.owner, smtp_server, imap_server, address="rep@acme-mail.test")
    before = _tokens(cast)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = StringIO()
    call_command("secrets", "rotate", "--batch-size", "1", stdout=out)
    assert "4 rotated" in out.getvalue() and "0 unreadable" in out.getvalue()
    assert f"{cast.tenant.schema_name}.deliverability.Mailbox: 2 rows checked" in out.getvalue()
    after = _tokens(cast)
    assert all(a != b for a, b in zip(after, before, strict=True))
    assert all(Fernet(new.encode()).decrypt(t.encode()).decode() == PASSWORD for t in after)
    # The old key can go now: the mailbox still works.
    settings.FIELD_ENCRYPTION_KEYS = [new]
    box = mailbox_in(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        assert svc.test_mailbox(principal(cast.tenant, cast.owner), box).ok
    out = StringIO()
    call_command("secrets", "rotate", stdout=out)
    assert "0 rotated" in out.getvalue()


def test_it_reports_a_secret_no_key_opens_marks_the_mailbox_and_exits_non_zero(
    cast: Cast, smtp_server: Smtp, imap_server: Imap, settings: Any
) -> None:
    lost = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [lost]
    connect(cast.tenant, cast.owner, smtp_server, imap_server)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    err = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("secrets", "rotate", stdout=StringIO(), stderr=err)
    assert "could not be decrypted" in str(caught.value)
    assert "smtp_password: no key decrypts it" in err.getvalue()
    assert lost not in err.getvalue() + str(caught.value)
    box = mailbox_in(cast.tenant)
    assert box.status == MailboxStatus.UNUSABLE and "secrets rotate" in box.status_reason
