"""The Mailu client against a fake that speaks Mailu's API over real HTTP."""

from __future__ import annotations

import logging

import pytest

from deliverability.dns.records import dkim_key_bits
from infrastructure.mailu import (
    MailuAuthError,
    MailuClient,
    MailuConflict,
    MailuError,
    MailuNotFound,
    parse_dns_dkim,
)
from tests.fakes.mailu import FakeMailu


def test_it_creates_lists_gets_and_deletes_domains(
    mailu: MailuClient, fake_mailu: FakeMailu
) -> None:
    domain = mailu.create_domain("acme-mail.test", comment="tenant acme", max_users=50)
    assert (domain.name, domain.comment, domain.max_users) == ("acme-mail.test", "tenant acme", 50)
    assert domain.dkim is None  # Mailu does not generate a key on create
    assert [d.name for d in mailu.list_domains()] == ["acme-mail.test"]
    assert mailu.get_domain("acme-mail.test").dns_records["dns_mx"].endswith("mail.pm.test.")
    mailu.delete_domain("acme-mail.test")
    with pytest.raises(MailuNotFound) as excinfo:
        mailu.get_domain("acme-mail.test")
    assert excinfo.value.permanent and "does not exist" in excinfo.value.message
    mailu.delete_domain("acme-mail.test")  # already gone: fine
    with pytest.raises(MailuNotFound):
        mailu.delete_domain("acme-mail.test", missing_ok=False)


def test_it_treats_a_duplicate_domain_as_created(mailu: MailuClient, fake_mailu: FakeMailu) -> None:
    mailu.create_domain("acme-mail.test")
    again = mailu.create_domain("acme-mail.test")
    assert again.name == "acme-mail.test"
    assert [r.path for r in fake_mailu.seen("POST")] == ["/api/v1/domain", "/api/v1/domain"]
    assert len(fake_mailu.domains) == 1


def test_it_reads_mailus_error_inside_an_http_200(mailu: MailuClient) -> None:
    # GET /domain/<invalid name> answers HTTP 200 with {"code": 400} in the body.
    with pytest.raises(MailuError) as excinfo:
        mailu.get_domain("not_a_domain")
    assert excinfo.value.status == 400 and excinfo.value.permanent


def test_it_generates_dkim_and_reads_the_key_back(
    mailu: MailuClient, fake_mailu: FakeMailu
) -> None:
    mailu.create_domain("acme-mail.test")
    assert mailu.get_dkim("acme-mail.test") is None
    dkim = mailu.ensure_dkim("acme-mail.test")
    assert dkim.selector == "dkim"
    assert dkim.name == "dkim._domainkey.acme-mail.test"
    assert dkim.public_key == fake_mailu.dkim_keys["acme-mail.test"]
    assert dkim.txt_value == f"v=DKIM1; k=rsa; p={dkim.public_key}"
    assert dkim_key_bits(dkim.public_key) == 2048
    # A re-run does not rotate the key; an explicit generate does.
    assert mailu.ensure_dkim("acme-mail.test") == dkim
    assert len(fake_mailu.seen("POST", "/api/v1/domain/acme-mail.test/dkim")) == 1
    assert mailu.generate_dkim("acme-mail.test").public_key != dkim.public_key
    with pytest.raises(MailuNotFound):
        mailu.generate_dkim("missing.test")


def test_it_parses_a_dns_dkim_line() -> None:
    line = 'sel._domainkey.a.test. 600 IN TXT "v=DKIM1; k=rsa; p=MIIB" "IjAN"'
    dkim = parse_dns_dkim(line)
    assert dkim is not None
    assert (dkim.selector, dkim.public_key) == ("sel", "MIIBIjAN")
    assert parse_dns_dkim(None) is None


def test_it_manages_users(mailu: MailuClient, fake_mailu: FakeMailu) -> None:
    mailu.create_domain("acme-mail.test")
    user = mailu.create_user(
        "ann@acme-mail.test", "first-Secret-1", quota_bytes=2_000_000, displayed_name="Ann"
    )
    assert (user.email, user.quota_bytes, user.enabled, user.displayed_name) == (
        "ann@acme-mail.test",
        2_000_000,
        True,
        "Ann",
    )
    assert fake_mailu.password_of("ann@acme-mail.test") == "first-Secret-1"
    assert [u.email for u in mailu.list_users("acme-mail.test")] == ["ann@acme-mail.test"]
    assert [u.email for u in mailu.list_users()] == ["ann@acme-mail.test"]

    updated = mailu.update_user(
        "ann@acme-mail.test", password="second-Secret-2", quota_bytes=5, enabled=False
    )
    assert (updated.quota_bytes, updated.enabled) == (5, False)
    assert fake_mailu.password_of("ann@acme-mail.test") == "second-Secret-2"

    mailu.delete_user("ann@acme-mail.test")
    with pytest.raises(MailuNotFound):
        mailu.get_user("ann@acme-mail.test")


def test_it_makes_user_creation_idempotent_and_converges_the_password(
    mailu: MailuClient, fake_mailu: FakeMailu
) -> None:
    mailu.create_domain("acme-mail.test")
    mailu.create_user("ann@acme-mail.test", "first-Secret-1")
    again = mailu.create_user("ann@acme-mail.test", "second-Secret-2")
    assert again.email == "ann@acme-mail.test"
    assert fake_mailu.password_of("ann@acme-mail.test") == "second-Secret-2"
    assert len(fake_mailu.users) == 1


def test_it_reports_a_user_limit_as_a_permanent_conflict(
    mailu: MailuClient, fake_mailu: FakeMailu
) -> None:
    mailu.create_domain("acme-mail.test", max_users=1)
    mailu.create_user("ann@acme-mail.test", "first-Secret-1")
    # At the limit, re-creating Ann still converges (Mailu checks the limit first)...
    mailu.create_user("ann@acme-mail.test", "first-Secret-1")
    # ...while a new user is refused.
    with pytest.raises(MailuConflict) as excinfo:
        mailu.create_user("bob@acme-mail.test", "other-Secret-3")
    assert excinfo.value.permanent and "Too many users" in excinfo.value.message


def test_it_manages_aliases(mailu: MailuClient, fake_mailu: FakeMailu) -> None:
    mailu.create_domain("acme-mail.test")
    mailu.create_user("ann@acme-mail.test", "first-Secret-1")
    mailu.create_user("bob@acme-mail.test", "first-Secret-1")
    alias = mailu.create_alias("sales@acme-mail.test", ["ann@acme-mail.test"])
    assert alias.destination == ["ann@acme-mail.test"]
    # Duplicate create converges on the new destinations.
    again = mailu.create_alias("sales@acme-mail.test", ["bob@acme-mail.test"])
    assert again.destination == ["bob@acme-mail.test"]
    assert [a.email for a in mailu.list_aliases("acme-mail.test")] == ["sales@acme-mail.test"]
    updated = mailu.update_alias("sales@acme-mail.test", destination=["ann@acme-mail.test"])
    assert updated.destination == ["ann@acme-mail.test"]
    with pytest.raises(MailuNotFound, match="does not exist"):
        mailu.create_alias("info@acme-mail.test", ["nobody@acme-mail.test"])
    mailu.delete_alias("sales@acme-mail.test")
    assert mailu.list_aliases() == []


def test_it_never_retries_a_bad_token(
    fake_mailu: FakeMailu, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = MailuClient(fake_mailu.url, "wrong-token", attempts=5, backoff=0.01)
    with pytest.raises(MailuAuthError) as excinfo:
        client.list_domains()
    assert excinfo.value.permanent and excinfo.value.status == 403
    assert len(fake_mailu.requests) == 1
    assert "wrong-token" not in str(excinfo.value) + caplog.text + repr(client)


def test_it_never_retries_a_missing_authorization(fake_mailu: FakeMailu) -> None:
    client = MailuClient(fake_mailu.url, "", attempts=5, backoff=0.01)
    client._http.headers.pop("Authorization")
    with pytest.raises(MailuAuthError) as excinfo:
        client.list_domains()
    assert excinfo.value.status == 401
    assert len(fake_mailu.requests) == 1


def test_it_reports_the_bad_token_lockout_as_permanent(
    mailu: MailuClient, fake_mailu: FakeMailu
) -> None:
    bad = MailuClient(fake_mailu.url, "wrong-token", backoff=0.01)
    for _ in range(5):
        with pytest.raises(MailuAuthError):
            bad.list_domains()
    # Now even the right token is locked out, as Mailu does.
    with pytest.raises(MailuAuthError) as excinfo:
        mailu.list_domains()
    assert excinfo.value.status == 429 and excinfo.value.permanent
    assert len(fake_mailu.requests) == 6


def test_it_retries_server_errors_a_bounded_number_of_times(
    mailu: MailuClient, fake_mailu: FakeMailu
) -> None:
    fake_mailu.fail_next(503, count=2)
    assert mailu.list_domains() == []
    assert len(fake_mailu.requests) == 3

    fake_mailu.fail_next(502, count=3)
    with pytest.raises(MailuError) as excinfo:
        mailu.list_domains()
    assert not excinfo.value.permanent and excinfo.value.status == 502
    assert len(fake_mailu.requests) == 6


def test_it_retries_a_timeout_and_does_not_log_passwords(
    fake_mailu: FakeMailu, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = MailuClient(fake_mailu.url, fake_mailu.token, timeout=0.3, backoff=0.01)
    client.create_domain("acme-mail.test")
    fake_mailu.fail_next(200, delay=1.0)
    user = client.create_user("ann@acme-mail.test", "very-Secret-9")
    assert user.email == "ann@acme-mail.test"
    assert len(fake_mailu.seen("POST", "/api/v1/user")) == 2
    assert "very-Secret-9" not in caplog.text
    assert fake_mailu.token not in caplog.text


def test_it_treats_validation_errors_as_permanent(mailu: MailuClient) -> None:
    with pytest.raises(MailuError) as excinfo:
        mailu._request("POST", "/domain", {"comment": "no name"})
    assert excinfo.value.status == 400 and excinfo.value.permanent
    assert "name: 'name' is a required property" in excinfo.value.message
