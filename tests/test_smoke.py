from __future__ import annotations

from tests.conftest import Cast, client_for


def test_it_routes_a_tenant_host_to_its_dashboard(cast: Cast) -> None:
    response = client_for(cast.owner, cast.tenant).get("/")
    assert response.status_code == 200
    assert b"Acme Agency" in response.content


def test_it_treats_an_outsider_as_anonymous_on_another_tenants_host(cast: Cast) -> None:
    response = client_for(cast.outsider, cast.tenant).get("/")
    assert response.status_code == 302
