"""Blocklist listings on the alert engine: a listing opens "blocklist.listed" for the IP (shown
on its tenant's dashboard, the emails as before), delisting resolves it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import connection

from penguinmails.alerts import Alert, AlertState
from penguinmails.sandbox.dns import SandboxDnsServer, stage_blocklisting
from reputation.services import blocklists
from tests.blocklists.conftest import dnsbl, make_ip  # noqa: F401 - the fixture
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def _check(address: str, capture: Any) -> None:
    with capture(execute=True):
        blocklists.check_ips([address])
    connection.set_schema_to_public()


def test_a_listing_opens_the_alert_and_delisting_resolves_it(
    cast: Cast,
    dnsbl: SandboxDnsServer,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_ip(cast.tenant, "127.0.0.75")
    stage_blocklisting(dnsbl.store, "127.0.0.75", zone="bl.spamcop.net")
    mail.outbox.clear()
    _check("127.0.0.75", django_capture_on_commit_callbacks)
    alert = Alert.objects.get(rule="blocklist.listed", subject="ip:127.0.0.75")
    assert alert.state == AlertState.FIRING and alert.tenant_schema == cast.tenant.schema_name
    assert "SpamCop" in alert.summary
    # The emails keep their content, and staff get theirs once (not a second, generic one).
    staff = [m for m in mail.outbox if "noc@penguinmails.test" in m.to]
    assert len(staff) == 1 and staff[0].subject.startswith("[staff] [PenguinMails] 127.0.0.75")
    page = client_for(cast.owner, cast.tenant).get("/").content.decode()
    assert "127.0.0.75 is blocklisted" in page
    other = client_for(cast.outsider, cast.other_tenant).get("/").content.decode()
    assert "127.0.0.75" not in other

    _check("127.0.0.75", django_capture_on_commit_callbacks)  # still listed: the same alert
    assert Alert.objects.filter(rule="blocklist.listed", subject="ip:127.0.0.75").count() == 1

    stage_blocklisting(dnsbl.store, "127.0.0.75", zone="bl.spamcop.net", remove=True)
    _check("127.0.0.75", django_capture_on_commit_callbacks)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_at is not None
