from __future__ import annotations

import re
import time

from django.core import signing
from django.test import Client

from tenants.models import User
from tenants.services.accounts import make_verification_token
from tests.conftest import PASSWORD, Cast, client_for


def _link_path(body: str) -> str:
    match = re.search(r"https?://localhost(?::\d+)?(/verify-email/[^/\s]+/)", body)
    assert match, body
    return match.group(1)


def test_it_verifies_the_email_from_the_signup_mail_once(
    cast: Cast, public_client: Client, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        public_client.post(
            "/signup/",
            {
                "workspace_name": "Hooli",
                "slug": "hooli",
                "full_name": "Gavin Belson",
                "email": "gavin@hooli.example",
                "password": PASSWORD,
            },
        )
    path = _link_path(mailoutbox[0].body)
    assert _link_path(mailoutbox[0].alternatives[0][0]) == path

    response = Client(HTTP_HOST="localhost").get(path)
    assert response.status_code == 200
    assert b"Your email address is verified" in response.content
    user = User.objects.get(email="gavin@hooli.example")
    verified_at = user.email_verified_at
    assert verified_at is not None

    again = Client(HTTP_HOST="localhost").get(path)
    assert again.status_code == 200
    assert b"already verified" in again.content
    user.refresh_from_db()
    assert user.email_verified_at == verified_at


def test_it_refuses_a_tampered_link(cast: Cast, public_client: Client) -> None:
    token = make_verification_token(cast.member)
    response = public_client.get(f"/verify-email/{token[:-2]}xx/")
    assert response.status_code == 400
    cast.member.refresh_from_db()
    assert cast.member.email_verified_at is None


def test_it_refuses_a_link_older_than_three_days(
    cast: Cast, public_client: Client, monkeypatch
) -> None:
    four_days_ago = time.time() - 4 * 24 * 3600
    # Sign as if four days ago: the stdlib clock is what signing reads.
    monkeypatch.setattr(signing.time, "time", lambda: four_days_ago)
    token = make_verification_token(cast.member)
    monkeypatch.undo()
    response = public_client.get(f"/verify-email/{token}/")
    assert response.status_code == 400
    assert b"expired" in response.content
    cast.member.refresh_from_db()
    assert cast.member.email_verified_at is None


def test_it_refuses_a_link_sent_to_a_previous_address(cast: Cast, public_client: Client) -> None:
    token = make_verification_token(cast.member)
    User.objects.filter(pk=cast.member.pk).update(email="changed@acme.test")
    assert public_client.get(f"/verify-email/{token}/").status_code == 400
    assert User.objects.get(pk=cast.member.pk).email_verified_at is None


def test_it_resends_the_verification_mail_to_the_logged_in_user(
    cast: Cast, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    client = client_for(cast.member, cast.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/account/verify/resend/")
    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [[cast.member.email]]
    path = _link_path(mailoutbox[0].body)

    # A second click within a minute sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/verify/resend/")
    assert len(mailoutbox) == 1

    assert Client(HTTP_HOST="localhost").get(path).status_code == 200
    cast.member.refresh_from_db()
    assert cast.member.email_verified_at is not None


def test_it_does_not_resend_to_a_verified_user(
    cast: Cast, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    User.objects.filter(pk=cast.admin.pk).update(email_verified_at="2024-01-01T00:00:00Z")
    with django_capture_on_commit_callbacks(execute=True):
        client_for(cast.admin, cast.tenant).post("/account/verify/resend/")
    assert mailoutbox == []


def test_it_refuses_resend_to_an_outsider_and_to_get(
    cast: Cast, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.outsider, cast.tenant).post("/account/verify/resend/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert client_for(cast.member, cast.tenant).get("/account/verify/resend/").status_code == 405
    assert mailoutbox == []
