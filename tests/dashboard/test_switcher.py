from __future__ import annotations

from urllib.parse import urlsplit

from tenants.models import Membership, Role
from tenants.services.handoff import consume_handoff
from tests.conftest import Cast, client_for


def _join_globex(cast: Cast) -> None:
    Membership.objects.create(
        tenant=cast.other_tenant,
        user=cast.member,
        role=Role.objects.get(tenant=None, slug="viewer"),
    )


def test_it_lists_the_users_other_workspaces(cast: Cast) -> None:
    _join_globex(cast)
    content = client_for(cast.member, cast.tenant).get("/").content.decode()
    assert 'href="/switch/globex/"' in content
    assert "Globex Sales" in content


def test_it_hands_off_to_another_workspace_of_the_user(cast: Cast) -> None:
    _join_globex(cast)
    response = client_for(cast.member, cast.tenant).get("/switch/globex/")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.hostname == "globex.localhost"
    token = location.path.removeprefix("/auth/handoff/").strip("/")
    consumed = consume_handoff(token, cast.other_tenant)
    assert consumed is not None and consumed[0] == cast.member


def test_it_answers_404_for_a_workspace_the_user_is_not_in(cast: Cast) -> None:
    response = client_for(cast.member, cast.tenant).get("/switch/globex/")
    assert response.status_code == 404


def test_it_answers_404_for_a_deactivated_membership(cast: Cast) -> None:
    _join_globex(cast)
    Membership.objects.filter(tenant=cast.other_tenant, user=cast.member).update(is_active=False)
    assert client_for(cast.member, cast.tenant).get("/switch/globex/").status_code == 404
    assert (
        'href="/switch/globex/"'
        not in client_for(cast.member, cast.tenant).get("/").content.decode()
    )


def test_it_redirects_an_outsider_to_login_on_the_switcher(cast: Cast) -> None:
    response = client_for(cast.outsider, cast.tenant).get("/switch/globex/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_lands_the_user_logged_in_on_the_other_workspace(cast: Cast) -> None:
    _join_globex(cast)
    response = client_for(cast.member, cast.tenant).get("/switch/globex/")
    globex = client_for(None, cast.other_tenant)
    landed = globex.get(urlsplit(response["Location"]).path, follow=True)
    assert landed.status_code == 200
    assert landed.context["request"].user == cast.member
    assert "Globex Sales" in landed.content.decode()
