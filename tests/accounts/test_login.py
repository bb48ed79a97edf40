from __future__ import annotations

from urllib.parse import urlsplit

from django.test import Client

from tenants.models import Membership, Role, User
from tenants.services.accounts import LOGIN_REFUSED_MESSAGE
from tenants.services.handoff import issue_handoff
from tests.conftest import PASSWORD, Cast, client_for

REFUSED = LOGIN_REFUSED_MESSAGE.encode()


def _tenant_client(slug: str) -> Client:
    return Client(HTTP_HOST=f"{slug}.localhost")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_it_logs_a_member_in_on_the_tenant_host(cast: Cast) -> None:
    client = _tenant_client("acme")
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"email": "Member@Acme.test", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert b"Acme Agency" in home.content


def test_it_follows_a_local_next_but_never_an_external_one(cast: Cast) -> None:
    client = _tenant_client("acme")
    response = client.post(
        "/login/?next=/settings/", {"email": cast.member.email, "password": PASSWORD}
    )
    assert response["Location"] == "/settings/"
    client = _tenant_client("acme")
    response = client.post(
        "/login/?next=https://evil.example/", {"email": cast.member.email, "password": PASSWORD}
    )
    assert response["Location"] == "/"


def test_it_sends_an_anonymous_visitor_of_the_dashboard_to_login(cast: Cast) -> None:
    response = _tenant_client("acme").get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_refuses_wrong_password_unknown_email_and_outsider_alike(cast: Cast) -> None:
    attempts = [
        {"email": cast.member.email, "password": "wrong-password-123"},
        {"email": "nobody@acme.test", "password": PASSWORD},
        # The outsider's password is right, but they are not a member of acme.
        {"email": cast.outsider.email, "password": PASSWORD},
    ]
    for data in attempts:
        client = _tenant_client("acme")
        response = client.post("/login/", data)
        assert response.status_code == 200
        assert REFUSED in response.content
        assert response.context["form"].non_field_errors() == [LOGIN_REFUSED_MESSAGE]
        assert client.get("/").status_code == 302


def test_it_refuses_a_deactivated_member(cast: Cast) -> None:
    Membership.objects.filter(tenant=cast.tenant, user=cast.viewer).update(is_active=False)
    response = _tenant_client("acme").post(
        "/login/", {"email": cast.viewer.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert REFUSED in response.content


def test_it_hands_a_single_workspace_user_straight_to_it_from_the_public_login(
    cast: Cast, public_client: Client
) -> None:
    response = public_client.post("/login/", {"email": cast.owner.email, "password": PASSWORD})
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.hostname == "acme.localhost"
    assert target.path.startswith("/auth/handoff/")
    browser = _tenant_client("acme")
    assert browser.get(target.path)["Location"] == "/"
    assert browser.get("/").status_code == 200


def test_it_lists_several_workspaces_to_choose_from(cast: Cast, public_client: Client) -> None:
    Membership.objects.create(
        tenant=cast.other_tenant, user=cast.member, role=Role.objects.get(slug="viewer")
    )
    response = public_client.post("/login/", {"email": cast.member.email, "password": PASSWORD})
    assert response["Location"] == "/workspaces/"
    chooser = public_client.get("/workspaces/")
    assert chooser.status_code == 200
    assert b"Acme Agency" in chooser.content and b"Globex Sales" in chooser.content

    go = public_client.get("/workspaces/globex/")
    target = urlsplit(go["Location"])
    assert target.hostname == "globex.localhost"
    browser = _tenant_client("globex")
    assert browser.get(target.path).status_code == 302
    assert browser.get("/").status_code == 200
    # The handoff was for globex: acme's host still wants a login.
    assert _tenant_client("acme").get("/").status_code == 302


def test_it_does_not_hand_off_to_a_workspace_the_user_is_not_in(
    cast: Cast, public_client: Client
) -> None:
    public_client.post("/login/", {"email": cast.outsider.email, "password": PASSWORD})
    response = public_client.get("/workspaces/acme/")
    assert response.status_code == 302 and response["Location"] == "/workspaces/"


def test_it_tells_a_user_without_workspaces_so(cast: Cast, public_client: Client) -> None:
    User.objects.create_user("loner@acme.test", PASSWORD)
    response = public_client.post("/login/", {"email": "loner@acme.test", "password": PASSWORD})
    assert response["Location"] == "/workspaces/"
    page = public_client.get("/workspaces/")
    assert b"not a member of any workspace" in page.content


def test_it_refuses_a_wrong_password_on_the_public_host(cast: Cast, public_client: Client) -> None:
    response = public_client.post("/login/", {"email": cast.owner.email, "password": "nope"})
    assert response.status_code == 200
    assert REFUSED in response.content
    assert public_client.get("/workspaces/").status_code == 302


def test_it_uses_a_handoff_token_once(cast: Cast) -> None:
    path = _path(issue_handoff(cast.admin, cast.tenant, next_path="/settings/"))
    first = _tenant_client("acme")
    assert first.get(path)["Location"] == "/settings/"
    assert first.get("/").status_code == 200

    again = _tenant_client("acme").get(path)
    assert again.status_code == 400
    assert b'href="/login/"' in again.content


def test_it_binds_a_handoff_token_to_its_tenant(cast: Cast) -> None:
    path = _path(issue_handoff(cast.outsider, cast.other_tenant))
    # Replayed on acme's host, globex's token is refused, and is spent.
    acme = _tenant_client("acme")
    assert acme.get(path).status_code == 400
    assert acme.get("/").status_code == 302
    assert _tenant_client("globex").get(path).status_code == 400


def test_it_refuses_a_handoff_for_a_non_member(cast: Cast) -> None:
    path = _path(issue_handoff(cast.outsider, cast.tenant))
    client = _tenant_client("acme")
    assert client.get(path).status_code == 400
    assert client.get("/").status_code == 302


def test_it_refuses_a_garbage_handoff_token(cast: Cast) -> None:
    assert _tenant_client("acme").get("/auth/handoff/not-a-token/").status_code == 400


def test_it_logs_out_with_a_post_only(cast: Cast) -> None:
    client = client_for(cast.member, cast.tenant)
    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_it_keeps_the_outsider_logged_out_of_acme_after_their_own_login(cast: Cast) -> None:
    client = _tenant_client("globex")
    client.post("/login/", {"email": cast.outsider.email, "password": PASSWORD})
    assert client.get("/").status_code == 200
    # The same browser on acme's host: no session there, and no way in.
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 302


def test_it_logs_in_through_the_real_form_with_csrf_checks(cast: Cast) -> None:
    client = Client(HTTP_HOST="acme.localhost", enforce_csrf_checks=True)
    assert (
        client.post("/login/", {"email": cast.member.email, "password": PASSWORD}).status_code
        == 403
    )
    page = client.get("/login/")
    token = page.context["csrf_token"]
    assert f'value="{token}"'.encode() in page.content
    response = client.post(
        "/login/",
        {"email": cast.member.email, "password": PASSWORD, "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    logout = client.post("/logout/", {"csrfmiddlewaretoken": home.context["csrf_token"]})
    assert logout["Location"] == "/login/"


def test_a_handoff_never_redirects_to_another_host(cast: Cast) -> None:
    for next_path in ("/\\evil.example", "//evil.example", "https://evil.example/", "/\t/evil"):
        path = _path(issue_handoff(cast.admin, cast.tenant, next_path=next_path))
        assert _tenant_client("acme").get(path)["Location"] == "/", next_path
