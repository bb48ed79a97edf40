"""Shared mail servers: staff register, list and retire them (command and admin, the same
services); Starter mailboxes land on them, spread by load and kept per tenant; retiring sends
new mailboxes elsewhere or answers the clear 409."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from deliverability.models import Mailbox, MailboxStatus
from deliverability.services import mailboxes as mailbox_svc
from deliverability.services.domains import add_domain
from infrastructure.models import MailServer, MailServerKind, MailServerStatus
from infrastructure.services.mailservers import (
    register_shared_mail_server,
    retire_shared_mail_server,
)
from penguinmails.models import Job
from tenants.models import AuditEvent, Tenant, User
from tests.api.conftest import assert_error
from tests.conftest import PASSWORD, Cast, client_for
from tests.domains.conftest import principal, run_jobs
from tests.fakes.mailu import FakeMailu
from tests.ops.conftest import MANAGE, PYTHON, ROOT, subprocess_env, the_test_database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mailu() -> Iterator[FakeMailu]:
    fake = FakeMailu(hostname="shared1.pm.test").start()
    yield fake
    fake.stop()


@pytest.fixture
def mailu2() -> Iterator[FakeMailu]:
    fake = FakeMailu(hostname="shared2.pm.test", token="second-mailu-token").start()
    yield fake
    fake.stop()


def public() -> None:
    connection.set_schema_to_public()  # type: ignore[attr-defined]  # django-tenants adds it


def register(fake: FakeMailu, **overrides: Any) -> MailServer:
    fields: dict[str, Any] = {
        "hostname": fake.hostname,
        "smtp_host": fake.hostname,
        "smtp_port": 465,
        "imap_host": fake.hostname,
        "imap_port": 993,
        "mailu_api_url": fake.url,
        "api_token": fake.token,
        "actor": None,
    }
    fields.update(overrides)
    public()
    return register_shared_mail_server(**fields)


def token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / "mailu-token"
    path.write_text(token + "\n")
    return str(path)


def infra(*args: str) -> str:
    out = StringIO()
    call_command("infra", *args, stdout=out)
    return out.getvalue()


def manage(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, MANAGE, "infra", *args],
        env=subprocess_env(DATABASE_URL=the_test_database_url()),
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def domain_for(tenant: Tenant, owner: User, name: str) -> None:
    with schema_context(tenant.schema_name):
        add_domain(principal(tenant, owner), name=name)
    Job.objects.all().delete()  # the domain's publish job is not these tests' business
    public()


def create_mailbox(tenant: Tenant, user: User, local_part: str, domain: str) -> Mailbox:
    with schema_context(tenant.schema_name):
        return mailbox_svc.create_mailbox(
            principal(tenant, user), local_part=local_part, domain=domain
        )


def starter_domains(cast: Cast) -> None:
    # The cast's tenants are on Starter (no dedicated servers): they use shared servers.
    domain_for(cast.tenant, cast.owner, "acme-mail.test")
    domain_for(cast.other_tenant, cast.outsider, "globex-mail.test")


# --- the command ------------------------------------------------------------------------------


def test_it_registers_lists_and_retires_through_the_command(
    cast: Cast, mailu: FakeMailu, tmp_path: Path
) -> None:
    out = infra(
        "shared", "add", mailu.hostname, "--api-url", mailu.url,
        "--api-token-file", token_file(tmp_path, mailu.token), "--smtp-port", "465",
    )  # fmt: skip
    assert f"{mailu.hostname}: registered, active" in out and mailu.token not in out
    server = MailServer.objects.get(hostname=mailu.hostname)
    assert server.shared and server.tenant_id is None and server.kind == MailServerKind.MAILU
    assert (server.smtp_host, server.smtp_port, server.imap_port) == (mailu.hostname, 465, 993)
    assert server.api_token is not None and server.api_token.reveal() == mailu.token
    with connection.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT api_token FROM infrastructure_mailserver WHERE id = %s", [server.pk])
        assert mailu.token not in cursor.fetchone()[0]
    event = AuditEvent.objects.get(action="infra.shared_server_registered")
    assert event.detail["hostname"] == mailu.hostname and mailu.token not in json.dumps(
        event.detail
    )

    listed = json.loads(infra("shared", "list", "--json"))
    assert [(r["hostname"], r["status"], r["mailboxes"]) for r in listed] == [
        (mailu.hostname, "active", 0)
    ]
    assert mailu.token not in json.dumps(listed)
    assert f"{mailu.hostname} active mailu" in infra("shared", "list")

    assert "retired" in infra("shared", "retire", mailu.hostname)
    server.refresh_from_db()
    assert server.status == MailServerStatus.RETIRED
    assert AuditEvent.objects.filter(action="infra.shared_server_retired").count() == 1
    with pytest.raises(CommandError, match="already retired"):
        infra("shared", "retire", mailu.hostname)


def test_it_refuses_bad_command_input_with_the_reason_and_saves_nothing(
    cast: Cast, mailu: FakeMailu, tmp_path: Path
) -> None:
    good = token_file(tmp_path, mailu.token)
    with pytest.raises(CommandError, match="smtp_port: Enter a port number"):
        infra("shared", "add", mailu.hostname, "--api-url", mailu.url,
              "--api-token-file", good, "--smtp-port", "70000")  # fmt: skip
    with pytest.raises(CommandError, match="hostname: Enter a full host name"):
        infra("shared", "add", "not a host", "--api-url", mailu.url, "--api-token-file", good)
    with pytest.raises(CommandError, match="Use https"):
        infra("shared", "add", mailu.hostname, "--api-url", "http://mail.example.com/api/v1",
              "--api-token-file", good)  # fmt: skip
    with pytest.raises(CommandError, match="Cannot read the API token file"):
        infra("shared", "add", mailu.hostname, "--api-url", mailu.url,
              "--api-token-file", str(tmp_path / "missing"))  # fmt: skip
    with pytest.raises(CommandError, match="No shared mail server named 'nope.pm.test'"):
        infra("shared", "retire", "nope.pm.test")
    assert not MailServer.objects.exists() and mailu.requests == []

    # A token Mailu refuses: said so (never echoed), nothing saved, one try only.
    wrong = "wrong-token-123"
    with pytest.raises(CommandError, match="refused the token") as refused:
        infra("shared", "add", mailu.hostname, "--api-url", mailu.url,
              "--api-token-file", token_file(tmp_path, wrong))  # fmt: skip
    assert wrong not in str(refused.value) and mailu.bad_tokens == 1
    assert not MailServer.objects.exists()


def test_it_exits_non_zero_from_a_real_process(cast: Cast, mailu: FakeMailu) -> None:
    added = manage("shared", "add", mailu.hostname, "--api-url", mailu.url,
                   "--api-token-file", "-", stdin=mailu.token)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert mailu.token not in added.stdout + added.stderr

    duplicate = manage("shared", "add", mailu.hostname, "--api-url", mailu.url,
                       "--api-token-file", "-", stdin=mailu.token)  # fmt: skip
    assert duplicate.returncode == 1
    assert f"A mail server named {mailu.hostname} is already registered." in duplicate.stderr

    bad_port = manage("shared", "add", "other.pm.test", "--api-url", mailu.url,
                      "--api-token-file", "-", "--imap-port", "x", stdin=mailu.token)  # fmt: skip
    assert bad_port.returncode == 2 and "--imap-port: invalid int value" in bad_port.stderr
    assert MailServer.objects.filter(shared=True).count() == 1

    listed = manage("shared", "list", "--json")
    assert listed.returncode == 0
    assert [r["hostname"] for r in json.loads(listed.stdout)] == [mailu.hostname]


# --- the admin --------------------------------------------------------------------------------


@pytest.fixture
def staff_client(cast: Cast) -> Client:
    staff = User.objects.create_superuser("staff@penguinmails.example.com", PASSWORD)
    return client_for(staff, None)


def admin_form(fake: FakeMailu, **overrides: Any) -> dict[str, Any]:
    form = {
        "hostname": fake.hostname,
        "mailu_api_url": fake.url,
        "api_token": fake.token,
        "smtp_host": fake.hostname,
        "smtp_port": "587",
        "imap_host": fake.hostname,
        "imap_port": "993",
    }
    form.update(overrides)
    return form


ADD_URL = "/admin/infrastructure/mailserver/add/"
LIST_URL = "/admin/infrastructure/mailserver/"


def test_staff_register_and_retire_a_shared_server_in_the_admin(
    cast: Cast, mailu: FakeMailu, staff_client: Client
) -> None:
    page = staff_client.get(ADD_URL)
    assert page.status_code == 200 and "Register a shared mail server" in page.content.decode()

    refused = staff_client.post(ADD_URL, admin_form(mailu, smtp_port="0"))
    body = refused.content.decode()
    assert refused.status_code == 200 and "Enter a port number from 1 to 65535." in body
    assert mailu.token not in body  # the token is not rendered back
    assert not MailServer.objects.exists()

    done = staff_client.post(ADD_URL, admin_form(mailu))
    assert done.status_code == 302 and done["Location"] == LIST_URL
    server = MailServer.objects.get(shared=True)
    assert server.hostname == mailu.hostname and server.status == MailServerStatus.ACTIVE
    event = AuditEvent.objects.get(action="infra.shared_server_registered")
    assert event.actor is not None and event.actor.email == "staff@penguinmails.example.com"

    again = staff_client.post(ADD_URL, admin_form(mailu)).content.decode()
    assert f"A mail server named {mailu.hostname} is already registered." in again

    listing = staff_client.get(LIST_URL).content.decode()
    assert "shared (platform)" in listing and mailu.token not in listing
    staff_client.post(LIST_URL, {"action": "retire", "_selected_action": [server.pk]})
    server.refresh_from_db()
    assert server.status == MailServerStatus.RETIRED


def test_a_non_staff_user_cannot_register_a_shared_server(cast: Cast, mailu: FakeMailu) -> None:
    owner = client_for(cast.owner, None)
    assert owner.get(ADD_URL).status_code == 302  # to the staff login
    response = owner.post(ADD_URL, admin_form(mailu))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not MailServer.objects.exists() and mailu.requests == []


# --- where Starter mailboxes go ---------------------------------------------------------------


def test_a_starter_mailbox_lands_on_the_registered_shared_server(
    cast: Cast, mailu: FakeMailu
) -> None:
    server = register(mailu)
    starter_domains(cast)
    mailbox = create_mailbox(cast.tenant, cast.admin, "sales", "acme-mail.test")
    assert mailbox.mail_server_id == server.pk and mailbox.smtp_host == mailu.hostname
    run_jobs()
    with schema_context(cast.tenant.schema_name):
        assert Mailbox.objects.get(pk=mailbox.pk).status == MailboxStatus.ACTIVE
    assert "sales@acme-mail.test" in mailu.users  # created on the shared Mailu
    assert not MailServer.objects.filter(kind=MailServerKind.SANDBOX).exists()
    public()
    assert json.loads(infra("shared", "list", "--json"))[0]["mailboxes"] == 1


def test_it_spreads_tenants_by_load_and_keeps_each_tenant_on_its_server(
    cast: Cast, mailu: FakeMailu, mailu2: FakeMailu
) -> None:
    first, second = register(mailu), register(mailu2)
    starter_domains(cast)
    acme = create_mailbox(cast.tenant, cast.admin, "sales", "acme-mail.test")
    assert acme.mail_server_id == first.pk  # both empty: the oldest
    globex = create_mailbox(cast.other_tenant, cast.outsider, "sales", "globex-mail.test")
    assert globex.mail_server_id == second.pk  # the less loaded one
    acme2 = create_mailbox(cast.tenant, cast.admin, "hello", "acme-mail.test")
    acme3 = create_mailbox(cast.tenant, cast.admin, "team", "acme-mail.test")
    # Acme stays on its server although it is now the busier one.
    assert acme2.mail_server_id == acme3.mail_server_id == first.pk


def test_retiring_sends_new_mailboxes_elsewhere_or_answers_409(
    cast: Cast, mailu: FakeMailu, mailu2: FakeMailu, settings: Any
) -> None:
    settings.VPS_PROVIDER = "hostwinds"  # production: no sandbox stand-in
    first, second = register(mailu), register(mailu2)
    starter_domains(cast)
    before = create_mailbox(cast.tenant, cast.admin, "sales", "acme-mail.test")
    assert before.mail_server_id == first.pk

    public()
    retire_shared_mail_server(first, actor=None)
    moved = create_mailbox(cast.tenant, cast.admin, "hello", "acme-mail.test")
    assert moved.mail_server_id == second.pk
    with schema_context(cast.tenant.schema_name):  # the mailbox already there stays
        assert Mailbox.objects.get(pk=before.pk).mail_server_id == first.pk

    public()
    retire_shared_mail_server(second, actor=None)
    api = client_for(cast.admin, cast.tenant, api=True)
    response = api.post(
        "/api/v1/mailboxes",
        {"kind": "hosted", "local_part": "team", "domain": "acme-mail.test"},
        format="json",
    )
    error = assert_error(response, 409, "no_mail_server")
    assert "shared mail servers are not available" in error["message"]
