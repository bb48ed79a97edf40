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
from pytest_django.fixtures import Settings as SettingsWrapper

from penguinmails.sandbox.smtp import free_port
from penguinmails.sandbox.store import SandboxStore
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


def _deliver(sandbox: LiveSandbox) -> str:
    with smtplib.SMTP(sandbox.host, sandbox.port, timeout=5) as smtp:
        smtp.login(sandbox.user, sandbox.password)
        smtp.send_message(_message(subject="Campaign preview", html=HOSTILE_HTML))
    [stored] = sandbox.store.list_messages()
    return stored.key


@pytest.fixture
def pages(sandbox_smtp: LiveSandbox, settings: SettingsWrapper) -> LiveSandbox:
    settings.DEBUG = True
    settings.SANDBOX_MAILDIR = sandbox_smtp.maildir
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
