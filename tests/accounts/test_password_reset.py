from __future__ import annotations

import re

from django.test import Client, override_settings

from tenants.services import login_guard
from tests.conftest import PASSWORD, Cast

NEW_PASSWORD = "a-brand-new-passphrase-42"


def _reset_path(body: str) -> str:
    match = re.search(r"https?://localhost(?::\d+)?(/password-reset/[^/\s]+/[^/\s]+/)", body)
    assert match, body
    return match.group(1)


def _request(email: str, capture) -> object:
    with capture(execute=True):
        return Client(HTTP_HOST="localhost").post("/password-reset/", {"email": email})


def test_it_answers_the_same_for_known_and_unknown_addresses(
    cast: Cast, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    unknown = _request("nobody@acme.test", django_capture_on_commit_callbacks)
    assert mailoutbox == []
    garbage = _request("not an email", django_capture_on_commit_callbacks)
    assert mailoutbox == []
    known = _request(cast.member.email.upper(), django_capture_on_commit_callbacks)
    assert [m.to for m in mailoutbox] == [[cast.member.email]]
    assert unknown.status_code == garbage.status_code == known.status_code == 200
    assert unknown.content == garbage.content == known.content
    assert b"If an account exists" in known.content


def test_it_resets_the_password_through_the_link_once(
    cast: Cast, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    _request(cast.member.email, django_capture_on_commit_callbacks)
    path = _reset_path(mailoutbox[0].body)
    client = Client(HTTP_HOST="localhost")
    assert client.get(path).status_code == 200

    mismatch = client.post(path, {"new_password": NEW_PASSWORD, "new_password_again": "other"})
    assert b"The two passwords differ" in mismatch.content
    weak = client.post(path, {"new_password": "password", "new_password_again": "password"})
    assert b"too common" in weak.content
    cast.member.refresh_from_db()
    assert cast.member.check_password(PASSWORD)

    done = client.post(path, {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD})
    assert done.status_code == 200
    assert b"Your password is changed" in done.content
    cast.member.refresh_from_db()
    assert cast.member.check_password(NEW_PASSWORD)
    # Whoever reads the mailbox has proven the address.
    assert cast.member.email_verified_at is not None

    assert client.get(path).status_code == 400
    login = Client(HTTP_HOST="acme.localhost").post(
        "/login/", {"email": cast.member.email, "password": NEW_PASSWORD}
    )
    assert login.status_code == 302


def test_it_refuses_a_forged_link(cast: Cast, public_client: Client) -> None:
    assert public_client.get("/password-reset/MQ/abc-123/").status_code == 400
    response = public_client.post(
        "/password-reset/MQ/abc-123/",
        {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
    )
    assert response.status_code == 400


@override_settings(LOGIN_MAX_FAILURES_PER_ACCOUNT=2)
def test_it_lifts_the_lockout_when_the_password_is_reset(
    cast: Cast, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    acme = Client(HTTP_HOST="acme.localhost")
    for _ in range(3):
        acme.post("/login/", {"email": cast.viewer.email, "password": "wrong-password-xyz"})
    assert login_guard.failures(cast.viewer.email) == 3

    _request(cast.viewer.email, django_capture_on_commit_callbacks)
    path = _reset_path(mailoutbox[0].body)
    with django_capture_on_commit_callbacks(execute=True):
        Client(HTTP_HOST="localhost").post(
            path, {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
        )
    assert login_guard.failures(cast.viewer.email) == 0
    response = acme.post("/login/", {"email": cast.viewer.email, "password": NEW_PASSWORD})
    assert response.status_code == 302
