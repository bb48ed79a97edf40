from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists

from penguinmails.errors import ValidationFailed
from tenants.models import Domain, Membership, Tenant, User
from tenants.services.accounts import sign_up
from tests.conftest import PASSWORD, Cast

GOOD = {
    "workspace_name": "Initech Outbound",
    "slug": "initech",
    "full_name": "Peter Gibbons",
    "email": "Peter@Initech.example",
    "password": PASSWORD,
}


def _counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace")
        schemas = cursor.fetchone()[0]
    return {
        "users": User.objects.count(),
        "tenants": Tenant.objects.count(),
        "domains": Domain.objects.count(),
        "memberships": Membership.objects.count(),
        "schemas": schemas,
    }


def test_it_shows_an_honest_landing_page(public_client: Client) -> None:
    response = public_client.get("/")
    assert response.status_code == 200
    assert b'href="/signup/"' in response.content
    assert b'href="/login/"' in response.content


def test_it_signs_up_and_lands_the_owner_on_their_dashboard(
    cast: Cast, public_client: Client, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = public_client.post("/signup/", GOOD)

    assert response.status_code == 302, response.context["form"].errors
    target = urlsplit(response["Location"])
    assert target.hostname == "initech.localhost"
    assert target.path.startswith("/auth/handoff/")

    user = User.objects.get(email="peter@initech.example")
    assert user.full_name == "Peter Gibbons"
    assert user.email_verified_at is None
    assert user.check_password(PASSWORD)
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.name == "Initech Outbound"
    assert schema_exists(tenant.schema_name)
    assert Domain.objects.filter(tenant=tenant, domain="initech.localhost").exists()
    membership = Membership.objects.get(tenant=tenant, user=user)
    assert membership.is_owner and membership.is_active

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["peter@initech.example"]
    assert "/verify-email/" in mailoutbox[0].body

    browser = Client(HTTP_HOST="initech.localhost")
    landed = browser.get(target.path)
    assert landed.status_code == 302 and landed["Location"] == "/"
    dashboard = browser.get("/")
    assert dashboard.status_code == 200
    assert b"Initech Outbound" in dashboard.content
    # The new owner's session is theirs alone: acme's host does not know it.
    assert browser.get("/", HTTP_HOST="acme.localhost").status_code == 302


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("slug", "acme", "already taken"),
        ("slug", "admin", "reserved"),
        ("slug", "A b!", "lowercase letters"),
        ("email", "not-an-email", "@"),
        ("email", "someone@acme.test", "special-use or reserved"),
        ("password", "password", "too common"),
        ("password", "12345678901", "entirely numeric"),
        ("workspace_name", "", "required"),
    ],
)
def test_it_refuses_a_bad_field_clearly_and_creates_nothing(
    cast: Cast,
    public_client: Client,
    mailoutbox: list,
    django_capture_on_commit_callbacks,
    field: str,
    value: str,
    expected: str,
) -> None:
    before = _counts()
    with django_capture_on_commit_callbacks(execute=True):
        response = public_client.post("/signup/", {**GOOD, field: value})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert expected in " ".join(errors[field])
    assert expected.encode() in response.content
    assert _counts() == before
    assert not Tenant.objects.filter(slug="initech").exists()
    assert mailoutbox == []


def test_it_tells_an_existing_account_to_log_in_and_creates_nothing(
    cast: Cast, public_client: Client, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    User.objects.create_user("taken@initech.example", PASSWORD)
    before = _counts()
    with django_capture_on_commit_callbacks(execute=True):
        response = public_client.post("/signup/", {**GOOD, "email": "Taken@initech.example"})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["email"]
    assert b"Log in instead" in response.content
    assert _counts() == before
    assert mailoutbox == []


def test_it_reports_every_bad_field_at_once_from_the_service(cast: Cast) -> None:
    before = _counts()
    with pytest.raises(ValidationFailed) as caught:
        sign_up(workspace_name="X", slug="www", email="nope", password="short", full_name="Someone")
    assert set(caught.value.fields) == {"slug", "email", "password"}
    assert _counts() == before
