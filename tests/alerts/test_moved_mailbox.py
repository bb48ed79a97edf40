"""A mailbox the inbound poller cannot log in to opens "mailbox.login_failing" for its tenant;
the next successful login resolves it."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from deliverability.models import Mailbox
from penguinmails.alerts import Alert, AlertState
from penguinmails.sandbox.imap import SandboxImap
from tests.conftest import Cast, client_for
from tests.inbound_poll.conftest import IMAP_PASSWORD, dovecot, imap, sent_world  # noqa: F401
from tests.sending.conftest import Sandbox, sandbox  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _set_password(cast: Cast, mailbox_id: int, password: str) -> None:
    with schema_context(cast.tenant.schema_name):
        mailbox = Mailbox.objects.get(pk=mailbox_id)
        mailbox.imap_password = password
        mailbox.save(update_fields=["imap_password"])


def test_a_failing_login_opens_the_alert_and_the_next_login_resolves_it(
    cast: Cast,
    sandbox: Sandbox,  # noqa: F811
    imap: SandboxImap,  # noqa: F811
) -> None:
    world = sent_world(cast, sandbox, imap, leads=1)
    subject = f"mailbox:{cast.tenant.schema_name}:{world.mailbox.pk}"
    _set_password(cast, world.mailbox.pk, "wrong-password")
    world.poll()
    world.poll()  # failing again: the same alert, refreshed
    connection.set_schema_to_public()
    alert = Alert.objects.get(rule="mailbox.login_failing", subject=subject)
    assert alert.state == AlertState.FIRING and alert.tenant_schema == cast.tenant.schema_name
    assert alert.detail["failures"] == 2 and "cannot log in" in alert.summary
    page = client_for(cast.owner, cast.tenant).get("/").content.decode()
    assert f"Mailbox {world.mailbox.address} cannot log in" in page
    other = client_for(cast.outsider, cast.other_tenant).get("/").content.decode()
    assert "cannot log in" not in other

    _set_password(cast, world.mailbox.pk, IMAP_PASSWORD)
    assert not world.poll().failed
    connection.set_schema_to_public()
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolution == "IMAP login succeeded"
