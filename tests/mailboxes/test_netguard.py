"""The outbound connection guard against server-side request forgery through mailbox settings:
refused at save (API and dashboard, HTTP 400 naming the field, one message whether or not
something listens) and again at connect time (a name that now resolves to a private address is
refused before any connection), with loopback let through only for the sandbox."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from django_tenants.utils import schema_context

from deliverability.models import Mailbox, MailboxKind, MailboxStatus, Security
from deliverability.smtp_pool import Delivery, Outcome, SmtpPool
from penguinmails import netguard
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneRecord
from penguinmails.sandbox.smtp import free_port
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for
from tests.domains.conftest import dns_server  # noqa: F401  (fixture)
from tests.mailboxes.conftest import PASSWORD, USER, Imap, Smtp, connect_form, mailboxes_in

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = netguard.MESSAGES[netguard.Reason.ADDRESS]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket that listens and never accepts: a completed connection shows up as one
    waiting in its backlog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def accepted_nothing(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def form_for(host: str, port: int, **extra: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "kind": "other",
        "address": USER,
        "smtp_host": host,
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_password": PASSWORD,
        "imap_host": host,
        "imap_port": port,
        "imap_security": "none",
    }
    form.update(extra)
    return form


def point(server: SandboxDnsServer, name: str, *addresses: str) -> None:
    server.store.remove(name)
    for address in addresses:
        kind = "AAAA" if ":" in address else "A"
        server.store.add(ZoneRecord.make(name, kind, address))


# --- at save -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "[::1]",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "100.64.0.1",
        "fd00::1",
        "0.0.0.0",  # noqa: S104  (reaches the local host on Linux)
        "internal.corp.test",  # the sandbox DNS says 10.20.30.40
    ],
)
def test_it_refuses_internal_servers_in_the_api_alike_whether_or_not_a_port_listens(
    cast: Cast,
    settings: Any,
    dns_server: SandboxDnsServer,  # noqa: F811
    listener: socket.socket,
    host: str,
) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False  # production
    point(dns_server, "internal.corp.test", "10.20.30.40")
    api = key_client(cast.tenant, role="member", creator=cast.owner).client
    listening = listener.getsockname()[1]
    bodies = []
    for port in (6379, listening, free_port()):  # Redis, our silent listener, nothing
        response = api.post("/api/v1/mailboxes", form_for(host, port), format="json")
        error = assert_error(response, 400)
        assert error["fields"]["smtp_host"] == [REFUSED], error
        assert error["fields"]["imap_host"] == [REFUSED], error
        bodies.append(response.content)
    assert bodies[0] == bodies[1] == bodies[2]
    assert accepted_nothing(listener)
    assert mailboxes_in(cast.tenant) == []


def test_it_refuses_an_unresolvable_name_with_the_same_words_as_a_private_one(
    cast: Cast,
    settings: Any,
    dns_server: SandboxDnsServer,  # noqa: F811
) -> None:
    # Telling "no such name" from "a private name" would map the internal DNS.
    settings.NETGUARD_ALLOW_LOOPBACK = False
    api = key_client(cast.tenant, role="member", creator=cast.owner).client
    error = assert_error(
        api.post("/api/v1/mailboxes", form_for("nothing-here.test", 587), format="json"), 400
    )
    assert error["fields"]["smtp_host"] == [REFUSED]


def test_it_refuses_ports_outside_the_allowed_sets_naming_the_port_field(cast: Cast) -> None:
    api = key_client(cast.tenant, creator=cast.owner).client
    body = form_for("192.0.2.1", 6379)  # TEST-NET-1: refused as an address first
    error = assert_error(api.post("/api/v1/mailboxes", body, format="json"), 400)
    assert error["fields"]["smtp_host"] == [REFUSED]
    # A public address: the port decides, per protocol, and nothing is contacted.
    public = form_for("8.8.8.8", 6379, imap_port=587)
    error = assert_error(api.post("/api/v1/mailboxes", public, format="json"), 400)
    assert error["fields"]["smtp_port"] == [
        "This port is not allowed: use port 25, 465, 587 or 2525."
    ]
    assert error["fields"]["imap_port"] == ["This port is not allowed: use port 143 or 993."]
    assert "smtp_host" not in error["fields"]


def test_it_keeps_the_platforms_own_ports_closed_even_with_the_sandbox_loopback_allowance(
    cast: Cast, settings: Any
) -> None:
    assert settings.NETGUARD_ALLOW_LOOPBACK  # DEBUG under tests: the sandbox is on loopback
    api = key_client(cast.tenant, creator=cast.owner).client
    for port in (6379, 5432):
        error = assert_error(
            api.post("/api/v1/mailboxes", form_for("127.0.0.1", port), format="json"), 400
        )
        assert set(error["fields"]) == {"smtp_port", "imap_port"}
    for host in ("10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1", "fe80::1", "224.0.0.1"):
        error = assert_error(api.post("/api/v1/mailboxes", form_for(host, 587), format="json"), 400)
        assert error["fields"]["smtp_host"] == [REFUSED], host


def test_it_refuses_internal_servers_in_the_dashboard_form(
    cast: Cast, settings: Any, listener: socket.socket
) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False
    client = client_for(cast.member, cast.tenant)
    response = client.post(
        "/mailboxes/connect/",
        form_for("169.254.169.254", 25, kind="google", imap_host="127.0.0.1")
        | {"imap_port": listener.getsockname()[1]},
    )
    assert response.status_code == 400
    assert response.content.decode().count(REFUSED) == 2
    assert accepted_nothing(listener) and mailboxes_in(cast.tenant) == []


def test_it_gives_the_outsider_no_answer_about_hosts(cast: Cast, settings: Any) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False
    foreign = key_client(cast.other_tenant, creator=cast.outsider, host=cast.tenant).client
    response = foreign.post("/api/v1/mailboxes", form_for("10.0.0.1", 25), format="json")
    assert response.status_code in (401, 403, 404) and REFUSED not in response.content.decode()
    own = client_for(cast.outsider, cast.other_tenant, api=True)
    error = assert_error(
        own.post("/api/v1/mailboxes", form_for("10.0.0.1", 25), format="json"), 400
    )
    assert error["fields"]["smtp_host"] == [REFUSED]
    assert mailboxes_in(cast.tenant) == [] and mailboxes_in(cast.other_tenant) == []


# --- at connect time ---------------------------------------------------------------------------
def test_it_refuses_a_name_that_resolves_to_a_private_address_after_it_was_saved(
    cast: Cast,
    dns_server: SandboxDnsServer,  # noqa: F811
    smtp_server: Smtp,
    imap_server: Imap,
) -> None:
    point(dns_server, "mail.rebind.test", "127.0.0.1")  # the sandbox, on loopback
    api = key_client(cast.tenant, creator=cast.owner).client
    body = connect_form(smtp_server, imap_server, smtp_host="mail.rebind.test")
    body["imap_host"] = "mail.rebind.test"
    created = api.post("/api/v1/mailboxes", body, format="json")
    assert created.status_code == 201, created.content
    greeted = len(smtp_server.peers)
    logins = len(imap_server.logins)
    point(dns_server, "mail.rebind.test", "10.9.8.7")
    report = api.post(f"/api/v1/mailboxes/{created.json()['id']}/test").json()
    assert report["ok"] is False
    assert (report["smtp"]["step"], report["imap"]["step"]) == ("dns", "dns")
    assert "is not allowed" in report["smtp"]["message"]
    assert report["mailbox"]["status"] == MailboxStatus.FAILING
    assert len(smtp_server.peers) == greeted and len(imap_server.logins) == logins


def test_the_pool_connects_to_the_vetted_address_and_never_to_a_mixed_answer(
    cast: Cast,
    dns_server: SandboxDnsServer,  # noqa: F811
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    with schema_context(cast.tenant.schema_name):
        mailbox = Mailbox.objects.create(
            address="sales@acme.test",
            kind=MailboxKind.OTHER,
            smtp_host="relay.rebind.test",
            smtp_port=port,
            smtp_security=Security.NONE,
            smtp_username="sales@acme.test",
            smtp_password="secret",
            status=MailboxStatus.ACTIVE,
            daily_limit=50,
        )
        # One public-looking answer is not enough: every address must pass, or the client
        # would connect to whichever it tries first.
        point(dns_server, "relay.rebind.test", "127.0.0.1", "10.0.0.9")
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[mailbox.pk], timeout=0.5) as pool:
            refused = _deliver(pool, mailbox)
        assert refused.outcome == Outcome.DEFERRED and refused.response.startswith("dns: ")
        assert "is not allowed" in refused.response
        assert accepted_nothing(listener)
        # The control: the same listener does see a connection once the answer is clean.
        point(dns_server, "relay.rebind.test", "127.0.0.1")
        with SmtpPool(tenant=cast.tenant, mailbox_ids=[mailbox.pk], timeout=0.5) as pool:
            silent = _deliver(pool, mailbox)
        assert silent.outcome == Outcome.DEFERRED and silent.response.startswith("connect: ")
        assert not accepted_nothing(listener)


def _deliver(pool: SmtpPool, mailbox: Mailbox) -> Delivery:
    message = EmailMessage()
    message["From"] = mailbox.address
    message["To"] = "lead@example.com"
    message["Subject"] = "Hello"
    message.set_content("Hi")
    return pool.deliver(
        message.as_bytes(), mailbox=mailbox, from_addr=mailbox.address, to_addr="lead@example.com"
    )


# --- the guard's own API ----------------------------------------------------------------------
def test_check_url_vets_scheme_credentials_host_and_port(settings: Any) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False
    assert netguard.check_url("https://8.8.8.8/hook").addresses == ("8.8.8.8",)
    for url, reason in [
        ("http://8.8.8.8/", netguard.Reason.INVALID),
        ("https://user:pw@8.8.8.8/", netguard.Reason.INVALID),
        ("https://169.254.169.254/latest/meta-data/", netguard.Reason.ADDRESS),
        ("https://[::ffff:a9fe:a9fe]/", netguard.Reason.ADDRESS),
        ("https://127.0.0.1:6379/", netguard.Reason.ADDRESS),
        ("https://8.8.8.8:6379/", netguard.Reason.PORT),
        ("https://localhost/", netguard.Reason.ADDRESS),
        ("https://printer.local/", netguard.Reason.UNRESOLVED),
    ]:
        with pytest.raises(netguard.Refused) as caught:
            netguard.check_url(url)
        assert caught.value.reason == reason, url
    assert netguard.check_url("http://8.8.8.8:8080/", schemes={"http"}, ports={8080}).port == 8080


# --- TLS against the name while connecting to the vetted address --------------------------------
def _self_signed(tmp: Any, name: str) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_tls_sends_the_name_as_sni_while_connecting_to_the_vetted_address(
    dns_server: SandboxDnsServer,  # noqa: F811
    tmp_path: Any,
) -> None:
    import ssl
    import threading

    from deliverability.services.mailbox_probe import Endpoint, probe_smtp

    cert, key = _self_signed(tmp_path, "mail.tls.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)  # type: ignore[assignment,misc,return-value]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        try:
            context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            pass  # the client refuses our self-signed certificate, as it should
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    point(dns_server, "mail.tls.test", "127.0.0.1")
    port = server.getsockname()[1]
    result = probe_smtp(Endpoint("mail.tls.test", port, "ssl", "u", "p"), timeout=5)
    thread.join(5)
    server.close()
    assert seen == ["mail.tls.test"]  # the name, not 127.0.0.1: certificates checked against it
    assert (result.ok, str(result.step)) == (False, "tls")
