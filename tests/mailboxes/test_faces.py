"""Mailboxes through the dashboard, the API and the commands: permissions, the outsider, write-only
passwords, the failing step on connect, plan limits and exit codes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.entitlements import limits_for
from deliverability.models import MailboxStatus
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for
from tests.mailboxes.conftest import (
    PASSWORD,
    USER,
    Imap,
    Smtp,
    connect,
    connect_form,
    mailbox_in,
    mailboxes_in,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_connects_from_the_dashboard_and_shows_the_failing_step(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    client = client_for(cast.admin, cast.tenant)
    bad = client.post(
        "/mailboxes/connect/", connect_form(smtp_server, imap_server, smtp_password="nope")
    )
    assert bad.status_code == 400
    page = bad.content.decode()
    assert 'data-protocol="smtp" data-step="auth"' in page and "nope" not in page
    assert mailboxes_in(cast.tenant) == []
    ok = client.post("/mailboxes/connect/", connect_form(smtp_server, imap_server))
    assert ok.status_code == 302
    listing = client.get("/mailboxes/").content.decode()
    assert USER in listing and 'data-status="active"' in listing and PASSWORD not in listing
    box = mailbox_in(cast.tenant)
    assert client.post(f"/mailboxes/{box.pk}/pause/", {"reason": "holiday"}).status_code == 302
    assert "holiday" in client.get("/mailboxes/").content.decode()
    assert client.post(f"/mailboxes/{box.pk}/resume/").status_code == 302
    assert client.post(f"/mailboxes/{box.pk}/limit/", {"daily_limit": "20"}).status_code == 302
    assert client.post(f"/mailboxes/{box.pk}/test/").status_code == 302
    after = mailbox_in(cast.tenant)
    assert (after.status, after.daily_limit, after.last_test_ok) == ("active", 20, True)
    assert client.post(f"/mailboxes/{box.pk}/delete/").status_code == 302
    assert mailboxes_in(cast.tenant) == []


def test_it_lets_a_viewer_look_but_not_change(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    client = client_for(cast.viewer, cast.tenant)
    page = client.get("/mailboxes/")
    assert page.status_code == 200 and USER in page.content.decode()
    assert "connect-form" not in page.content.decode()
    for path in ("pause", "test", "delete", "limit"):
        assert client.post(f"/mailboxes/{box.pk}/{path}/").status_code == 403, path
    assert (
        client.post("/mailboxes/connect/", connect_form(smtp_server, imap_server)).status_code
        == 403
    )
    api = client_for(cast.viewer, cast.tenant, api=True)
    assert api.get("/api/v1/mailboxes").status_code == 200
    assert_error(api.post(f"/api/v1/mailboxes/{box.pk}/test"), 403)
    assert mailbox_in(cast.tenant).status == MailboxStatus.ACTIVE


def test_it_shows_the_outsider_nothing_of_acme(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    box = connect(cast.tenant, cast.owner, smtp_server, imap_server)
    client = client_for(cast.outsider, cast.other_tenant)
    assert USER not in client.get("/mailboxes/").content.decode()
    for path in ("pause", "test", "delete", "limit", "resume"):
        assert client.post(f"/mailboxes/{box.pk}/{path}/").status_code == 404, path
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/mailboxes").json()["results"] == []
    assert_error(api.get(f"/api/v1/mailboxes/{box.pk}"), 404)
    assert_error(api.patch(f"/api/v1/mailboxes/{box.pk}", {"daily_limit": 5}, format="json"), 404)
    assert_error(api.post(f"/api/v1/mailboxes/{box.pk}/test"), 404)
    assert_error(api.delete(f"/api/v1/mailboxes/{box.pk}"), 404)
    # Acme's own host refuses the outsider outright.
    assert client_for(cast.outsider, cast.tenant).get("/mailboxes/").status_code in (302, 403, 404)
    after = mailbox_in(cast.tenant)
    assert (after.status, after.daily_limit) == ("active", box.daily_limit)


def test_it_connects_tests_and_limits_through_the_api_without_ever_returning_passwords(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    api = key_client(cast.tenant, creator=cast.owner).client
    bad = api.post(
        "/api/v1/mailboxes",
        connect_form(smtp_server, imap_server, imap_password="x"),
        format="json",
    )
    error = assert_error(bad, 400, "connection_failed")
    assert error["fields"]["imap"][0].startswith("auth:")
    created = api.post("/api/v1/mailboxes", connect_form(smtp_server, imap_server), format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (
        "smtp_password" not in body
        and "imap_password" not in body
        and PASSWORD not in created.content.decode()
    )
    box_id = body["id"]
    assert (
        api.patch(f"/api/v1/mailboxes/{box_id}", {"daily_limit": 30}, format="json").json()[
            "daily_limit"
        ]
        == 30
    )
    assert_error(
        api.patch(f"/api/v1/mailboxes/{box_id}", {"daily_limit": 100000}, format="json"), 400
    )
    imap_server.password = "rotated-elsewhere"
    report = api.post(f"/api/v1/mailboxes/{box_id}/test").json()
    assert report["ok"] is False and report["imap"]["step"] == "auth" and report["smtp"]["ok"]
    assert report["mailbox"]["status"] == "failing"
    listing = api.get("/api/v1/mailboxes")
    assert PASSWORD not in listing.content.decode()
    assert api.delete(f"/api/v1/mailboxes/{box_id}").status_code == 204
    assert mailboxes_in(cast.tenant) == []


def test_it_refuses_beyond_the_plan_limit_in_the_api_and_the_dashboard(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    allowed = limits_for(cast.tenant).count("mailboxes")
    for n in range(allowed):
        connect(cast.tenant, cast.owner, smtp_server, imap_server, address=f"rep{n}@acme-mail.test")
    logins = len(imap_server.logins)
    api = key_client(cast.tenant, creator=cast.owner).client
    assert_error(
        api.post("/api/v1/mailboxes", connect_form(smtp_server, imap_server), format="json"),
        402,
        "limit_reached",
    )
    page = client_for(cast.owner, cast.tenant).get("/mailboxes/")
    assert page.status_code == 200
    refused = client_for(cast.owner, cast.tenant).post(
        "/mailboxes/connect/", connect_form(smtp_server, imap_server)
    )
    assert refused.status_code == 402
    assert len(mailboxes_in(cast.tenant)) == allowed
    assert len(imap_server.logins) == logins  # refused before any connection test


def test_it_lists_and_tests_from_the_command_with_exit_codes(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    connect(cast.tenant, cast.owner, smtp_server, imap_server)
    out = StringIO()
    call_command("mailboxes", "list", "acme", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert [r["address"] for r in rows] == [USER] and "password" not in out.getvalue()
    out = StringIO()
    call_command("mailboxes", "test", "acme", USER, stdout=out)
    assert "smtp  ok" in out.getvalue()
    smtp_server.stop()
    with pytest.raises(CommandError) as caught:
        call_command("mailboxes", "test", "acme", USER, stdout=StringIO())
    assert "SMTP connect failed" in str(caught.value)
    with pytest.raises(CommandError):
        call_command("mailboxes", "test", "acme", "nobody@acme-mail.test", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("mailboxes", "list", "no-such-tenant", stdout=StringIO())


def test_it_refuses_beyond_the_plan_limit_from_the_command_too(
    cast: Cast, smtp_server: Smtp, imap_server: Imap
) -> None:
    allowed = limits_for(cast.tenant).count("mailboxes")
    for n in range(allowed):
        connect(cast.tenant, cast.owner, smtp_server, imap_server, address=f"rep{n}@acme-mail.test")
    with pytest.raises(CommandError) as caught:
        call_command("mailboxes", "create", "acme", "one.more@acme-mail.test", stdout=StringIO())
    assert "mailboxes" in str(caught.value) and "Upgrade to" in str(caught.value)
    assert len(mailboxes_in(cast.tenant)) == allowed
    with pytest.raises(CommandError, match="local@domain"):
        call_command("mailboxes", "create", "acme", "no-at-sign", stdout=StringIO())
