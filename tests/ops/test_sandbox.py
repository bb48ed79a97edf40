"""The sandbox SMTP server: AUTH required, messages kept with their envelope, pages to read them."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings as SettingsWrapper

from campaigns.tracking import tokens
from deliverability.models import DomainStatus, SendingDomain
from penguinmails.sandbox.smtp import free_port
from penguinmails.sandbox.store import SandboxStore
from tenants.models import Tenant
from tests.conftest import Cast, client_for
from tests.ops.conftest import MANAGE, PYTHON, ROOT, LiveSandbox, subprocess_env


def _message(subject: str = "Hello from the test", html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.test>"
    msg["To"] = "Visible <visible@example.test>"
    msg["Subject"] = subject
    msg.set_content("Plain body line.\n")
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def test_it_refuses_mail_before_auth(sandbox_smtp: LiveSandbox) -> None:
    with smtplib.SMTP(sandbox_smtp.host, sandbox_smtp.port, timeout=5) as smtp:
        smtp.ehlo()
        code, reply = smtp.mail("sender@example.test")
    assert code == 530
    assert b"Authentication required" in reply
    assert sandbox_smtp.store.list_messages() == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_it_refuses_bad_credentials(sandbox_smtp: LiveSandbox, mechanism: str) -> None:
    with smtplib.SMTP(sandbox_smtp.host, sandbox_smtp.port, timeout=5) as smtp:
        smtp.ehlo()
        smtp.user, smtp.password = sandbox_smtp.user, "wrong-password"
        authobject = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.auth(mechanism, authobject, initial_response_ok=mechanism == "PLAIN")
    assert refused.value.smtp_code == 535


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_it_stores_an_authenticated_message_with_its_envelope(
    sandbox_smtp: LiveSandbox, mechanism: str
) -> None:
    with smtplib.SMTP(sandbox_smtp.host, sandbox_smtp.port, timeout=5) as smtp:
        smtp.ehlo()
        smtp.user, smtp.password = sandbox_smtp.user, sandbox_smtp.password
        authobject = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
        code, _ = smtp.auth(mechanism, authobject, initial_response_ok=mechanism == "PLAIN")
        assert code == 235
        # The Bcc recipient is in the envelope only, never in the headers.
        refused = smtp.send_message(
            _message(),
            from_addr="bounces+42@example.test",
            to_addrs=["visible@example.test", "hidden@example.test"],
        )
    assert refused == {}
    [stored] = sandbox_smtp.store.list_messages()
    assert stored.envelope_from == "bounces+42@example.test"
    assert stored.envelope_to == ["visible@example.test", "hidden@example.test"]
    assert stored.subject == "Hello from the test"
    assert stored.from_header == "Sender <sender@example.test>"
    assert stored.text == "Plain body line.\n"
    assert sandbox_smtp.store.get_message(stored.key) == stored


def test_it_lists_newest_first_and_clears(sandbox_smtp: LiveSandbox) -> None:
    with smtplib.SMTP(sandbox_smtp.host, sandbox_smtp.port, timeout=5) as smtp:
        smtp.login(sandbox_smtp.user, sandbox_smtp.password)
        for n in range(3):
            smtp.send_message(_message(subject=f"number {n}"))
            time.sleep(0.01)
    subjects = [m.subject for m in sandbox_smtp.store.list_messages()]
    assert subjects == ["number 2", "number 1", "number 0"]
    assert sandbox_smtp.store.get_message("../../etc/passwd") is None
    assert sandbox_smtp.store.clear() == 3
    assert sandbox_smtp.store.list_messages() == []


def test_it_receives_from_djangos_smtp_backend(
    sandbox_smtp: LiveSandbox, settings: SettingsWrapper
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = sandbox_smtp.host
    settings.EMAIL_PORT = sandbox_smtp.port
    settings.EMAIL_HOST_USER = sandbox_smtp.user
    settings.EMAIL_HOST_PASSWORD = sandbox_smtp.password
    message = mail.EmailMultiAlternatives(
        "Welcome", "Text version", "no-reply@localhost", ["new@example.test"]
    )
    message.attach_alternative("<p>HTML <b>version</b></p>", "text/html")
    assert message.send() == 1
    [stored] = sandbox_smtp.store.list_messages()
    assert stored.envelope_to == ["new@example.test"]
    assert stored.text is not None and stored.text.strip() == "Text version"
    assert stored.html is not None and "<b>version</b>" in stored.html


def test_it_refuses_djangos_backend_without_credentials(
    sandbox_smtp: LiveSandbox, settings: SettingsWrapper
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = sandbox_smtp.host
    settings.EMAIL_PORT = sandbox_smtp.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        mail.send_mail("x", "y", "no-reply@localhost", ["new@example.test"])
    assert refused.value.smtp_code == 530
    assert sandbox_smtp.store.list_messages() == []


# --- Dashboard pages ---------------------------------------------------------------------------

HOSTILE_HTML = '<p>Hi</p><script>alert("pwned")</script><img src=x onerror="alert(1)">'


ACME_DOMAIN = "acme-mail.test"


def _deliver(
    sandbox: LiveSandbox,
    *,
    subject: str = "Campaign preview",
    sender: str = f"sam@{ACME_DOMAIN}",
    headers: dict[str, str] | None = None,
) -> str:
    msg = _message(subject=subject, html=HOSTILE_HTML)
    for name, value in (headers or {}).items():
        msg[name] = value
    before = {m.key for m in sandbox.store.list_messages()}
    with smtplib.SMTP(sandbox.host, sandbox.port, timeout=5) as smtp:
        smtp.login(sandbox.user, sandbox.password)
        smtp.send_message(msg, from_addr=sender)
    [stored] = [m for m in sandbox.store.list_messages() if m.key not in before]
    return stored.key


def _domain(tenant: Tenant, name: str, *, verified: bool = True) -> None:
    with schema_context(tenant.schema_name):
        SendingDomain.objects.create(
            name=name,
            tracking_host=f"track.{name}",
            dkim_selector="pm1",
            dkim_public_key="MIIB",
            dkim_private_key="secret",
            dmarc_rua=f"dmarc@{name}",
            status=DomainStatus.VERIFIED if verified else DomainStatus.PENDING,
            verified_at=timezone.now() if verified else None,
        )


@pytest.fixture
def pages(cast: Cast, sandbox_smtp: LiveSandbox, settings: SettingsWrapper) -> LiveSandbox:
    settings.DEBUG = True
    settings.SANDBOX_MAILDIR = sandbox_smtp.maildir
    _domain(cast.tenant, ACME_DOMAIN)
    return sandbox_smtp


def test_it_lists_and_shows_captured_mail_to_a_member(cast: Cast, pages: LiveSandbox) -> None:
    key = _deliver(pages)
    client = client_for(cast.viewer, cast.tenant)
    listing = client.get("/sandbox/mail/")
    assert listing.status_code == 200
    assert b"Campaign preview" in listing.content
    assert b"visible@example.test" in listing.content
    assert f"/sandbox/mail/{key}/".encode() in listing.content

    detail = client.get(f"/sandbox/mail/{key}/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "X-Sandbox-Envelope-From" in body
    assert "Plain body line." in body
    # The HTML part is only ever shown escaped: inside a sandboxed iframe's srcdoc, or as source.
    assert '<iframe sandbox="" title="HTML part" srcdoc="&lt;p&gt;Hi&lt;/p&gt;' in body
    assert "<script>alert" not in body
    assert 'onerror="alert' not in body


def test_it_returns_404_for_an_unknown_message(cast: Cast, pages: LiveSandbox) -> None:
    client = client_for(cast.member, cast.tenant)
    assert client.get("/sandbox/mail/1700000000.M1P1Q1.nowhere/").status_code == 404


def test_it_requires_a_member_login(cast: Cast, pages: LiveSandbox) -> None:
    anonymous = Client(HTTP_HOST="acme.localhost")
    assert anonymous.get("/sandbox/mail/").status_code == 302
    # A member of another tenant is anonymous on acme's host.
    assert client_for(cast.outsider, cast.tenant).get("/sandbox/mail/").status_code == 302


def test_it_clears_captured_mail_from_the_page(cast: Cast, pages: LiveSandbox) -> None:
    _deliver(pages)
    client = client_for(cast.member, cast.tenant)
    response = client.post("/sandbox/mail/clear/")
    assert response.status_code == 302
    assert pages.store.list_messages() == []


def _listed(client: Client) -> str:
    response = client.get("/sandbox/mail/")
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_a_tenant_only_its_own_messages(cast: Cast, pages: LiveSandbox) -> None:
    _domain(cast.other_tenant, "globex-mail.test")
    acme_key = _deliver(pages, subject="From acme's domain")
    globex_key = _deliver(pages, subject="From globex's domain", sender="gus@globex-mail.test")
    platform_key = _deliver(pages, subject="Verify your email", sender="no-reply@localhost")
    acme = client_for(cast.member, cast.tenant)
    globex = client_for(cast.outsider, cast.other_tenant)

    acme_page, globex_page = _listed(acme), _listed(globex)
    assert "From acme&#x27;s domain" in acme_page and f"/sandbox/mail/{acme_key}/" in acme_page
    assert "globex" not in acme_page and "Verify your email" not in acme_page
    assert "From globex&#x27;s domain" in globex_page
    assert "acme" not in globex_page.lower() and acme_key not in globex_page
    assert "Verify your email" not in globex_page  # the platform's own mail is nobody's

    # Another tenant's message by id is a 404, like one that does not exist.
    assert globex.get(f"/sandbox/mail/{acme_key}/").status_code == 404
    assert acme.get(f"/sandbox/mail/{globex_key}/").status_code == 404
    assert acme.get(f"/sandbox/mail/{platform_key}/").status_code == 404
    assert acme.get(f"/sandbox/mail/{acme_key}/").status_code == 200

    # Deleting from globex's page deletes globex's messages only.
    assert globex.post("/sandbox/mail/clear/").status_code == 302
    left = {m.key for m in pages.store.list_messages()}
    assert left == {acme_key, platform_key}


def test_it_attributes_campaign_mail_by_its_signed_unsubscribe_token(
    cast: Cast, pages: LiveSandbox
) -> None:
    def unsubscribe(token: str) -> dict[str, str]:
        return {"List-Unsubscribe": f"<http://t.localhost:8000/t/u/{token}>"}

    acme_token = tokens.sign("u", cast.tenant.pk, 41)
    globex_token = tokens.sign("u", cast.other_tenant.pk, 42)
    forged = tokens.sign("u", cast.tenant.pk, 43)[:-4] + "AAAA"
    # The token decides over the sender: acme's domain carrying globex's token is globex's.
    spoofed = _deliver(pages, subject="Globex token", headers=unsubscribe(globex_token))
    signed = _deliver(
        pages, subject="Acme token", sender="x@elsewhere.test", headers=unsubscribe(acme_token)
    )
    unsigned = _deliver(
        pages, subject="Forged token", sender="x@elsewhere.test", headers=unsubscribe(forged)
    )
    acme, globex = client_for(cast.owner, cast.tenant), client_for(cast.outsider, cast.other_tenant)
    assert acme.get(f"/sandbox/mail/{signed}/").status_code == 200
    assert acme.get(f"/sandbox/mail/{spoofed}/").status_code == 404
    assert globex.get(f"/sandbox/mail/{spoofed}/").status_code == 200
    assert globex.get(f"/sandbox/mail/{signed}/").status_code == 404
    for client in (acme, globex):
        assert client.get(f"/sandbox/mail/{unsigned}/").status_code == 404
    assert "Acme token" in _listed(acme) and "Globex token" not in _listed(acme)


def test_it_ignores_a_domain_the_tenant_only_added(cast: Cast, pages: LiveSandbox) -> None:
    # Anyone may type a domain; only verification proves it is theirs.
    _domain(cast.other_tenant, ACME_DOMAIN.replace("acme", "shared"), verified=False)
    key = _deliver(pages, sender=f"sam@{ACME_DOMAIN.replace('acme', 'shared')}")
    assert (
        client_for(cast.outsider, cast.other_tenant).get(f"/sandbox/mail/{key}/").status_code == 404
    )


def test_it_hides_the_pages_when_debug_is_off(
    cast: Cast, pages: LiveSandbox, settings: SettingsWrapper
) -> None:
    key = _deliver(pages)
    settings.DEBUG = False
    client = client_for(cast.owner, cast.tenant)
    assert client.get("/sandbox/mail/").status_code == 404
    assert client.get(f"/sandbox/mail/{key}/").status_code == 404
    assert client.post("/sandbox/mail/clear/").status_code == 404
    assert len(pages.store.list_messages()) == 1


# --- The command, in a real process -----------------------------------------------------------


def test_it_runs_as_a_command_and_debug_email_goes_through_it(tmp_path: Path) -> None:
    port = free_port()
    maildir = tmp_path / "maildir"
    env = subprocess_env(
        DEBUG="true",
        SANDBOX_SMTP_PORT=str(port),
        SANDBOX_MAILDIR=str(maildir),
        SANDBOX_SMTP_USER="dev-user",
        SANDBOX_SMTP_PASSWORD="dev-secret",
        EMAIL_HOST=None,
        EMAIL_PORT=None,
        EMAIL_HOST_USER=None,
        EMAIL_HOST_PASSWORD=None,
        EMAIL_BACKEND=None,
    )
    server = subprocess.Popen(
        [PYTHON, MANAGE, "sandbox", "smtp"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert f"Sandbox SMTP listening on 127.0.0.1:{port}" in banner, banner
        # With DEBUG on and no EMAIL_* set, Django's mail settings point at the sandbox.
        sent = subprocess.run(
            [PYTHON, MANAGE, "sendtestemail", "someone@example.test"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=10)
    assert server.returncode == 0
    assert "Sandbox SMTP stopped." in out
    [stored] = SandboxStore(maildir).list_messages()
    assert stored.envelope_to == ["someone@example.test"]
    assert "Test email from" in stored.subject
