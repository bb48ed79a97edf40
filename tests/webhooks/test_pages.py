"""The Webhooks dashboard page: owners add endpoints (the secret shown once), read the delivery
log and replay; viewers read only; the outsider reaches none of acme's endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from django_tenants.utils import schema_context

from tests.conftest import Cast, client_for
from tests.webhooks.conftest import Receiver, make_endpoint, run_deliveries
from webhooks.models import Delivery, DeliveryStatus, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_owner_adds_an_endpoint_and_sees_its_secret_once(
    cast: Cast, receiver: Receiver
) -> None:
    page = client_for(cast.owner, cast.tenant)
    index = page.get("/webhooks/")
    assert index.status_code == 200
    assert b'href="/webhooks/"' in index.content  # linked from the nav
    made = page.post(
        "/webhooks/new/", {"url": receiver.url, "events": ["message.sent", "message.opened"]}
    )
    assert made.status_code == 200
    assert made["Cache-Control"] == "no-store"
    assert b"whsec_" in made.content
    with schema_context(cast.tenant.schema_name):
        endpoint = Endpoint.objects.get()
    assert endpoint.events == ["message.sent", "message.opened"]
    assert receiver.url.encode() in page.get("/webhooks/").content
    assert b"whsec_" not in page.get(f"/webhooks/{endpoint.pk}/").content
    rotated = page.post(f"/webhooks/{endpoint.pk}/action/", {"do": "rotate"})
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    with schema_context(cast.tenant.schema_name):
        new_secret = Endpoint.objects.get().secret.reveal()
    assert new_secret.encode() in rotated.content and new_secret.encode() not in made.content


def test_a_refused_url_shows_the_form_again_with_the_reason(cast: Cast, settings: Any) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False
    page = client_for(cast.owner, cast.tenant)
    refused = page.post(
        "/webhooks/new/", {"url": "https://169.254.169.254/", "events": ["message.sent"]}
    )
    assert refused.status_code == 400
    assert b"public internet address" in refused.content


def test_the_log_shows_attempts_and_a_failed_delivery_is_replayed(
    cast: Cast, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_DELAYS = [0]
    receiver.statuses = [500, 500, 200]
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    page = client_for(cast.admin, cast.tenant)
    page.post(f"/webhooks/{made.endpoint.pk}/action/", {"do": "test"})
    run_deliveries()
    with schema_context(cast.tenant.schema_name):
        delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    log = page.get(f"/webhooks/{made.endpoint.pk}/").content.decode()
    assert "HTTP 500" in log and delivery.event_id in log

    page.post(f"/webhooks/{made.endpoint.pk}/deliveries/{delivery.pk}/replay/")
    run_deliveries()

    with schema_context(cast.tenant.schema_name):
        assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert "HTTP 200" in page.get(f"/webhooks/{made.endpoint.pk}/").content.decode()


def test_a_viewer_reads_but_cannot_change(cast: Cast, receiver: Receiver) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    page = client_for(cast.viewer, cast.tenant)
    detail = page.get(f"/webhooks/{made.endpoint.pk}/")
    assert detail.status_code == 200
    assert b"Show the secret" not in detail.content
    assert page.post(f"/webhooks/{made.endpoint.pk}/action/", {"do": "secret"}).status_code == 403
    assert page.post(f"/webhooks/{made.endpoint.pk}/action/", {"do": "delete"}).status_code == 403
    assert page.post(f"/webhooks/{made.endpoint.pk}/action/", {"do": "rotate"}).status_code == 403
    assert (
        page.post("/webhooks/new/", {"url": receiver.url, "events": ["message.sent"]}).status_code
        == 403
    )
    with schema_context(cast.tenant.schema_name):
        assert Endpoint.objects.count() == 1


def test_the_outsider_reaches_nothing_of_acme(cast: Cast, receiver: Receiver) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    pk = made.endpoint.pk
    own = client_for(cast.outsider, cast.other_tenant)
    assert receiver.url.encode() not in own.get("/webhooks/").content
    assert own.get(f"/webhooks/{pk}/").status_code == 404
    assert own.post(f"/webhooks/{pk}/action/", {"do": "delete"}).status_code == 404
    assert own.post(f"/webhooks/{pk}/action/", {"do": "secret"}).status_code == 404
    acme = client_for(cast.outsider, cast.tenant)
    response = acme.get(f"/webhooks/{pk}/")
    assert response.status_code in (302, 403, 404)
    assert receiver.url.encode() not in response.content
    assert acme.post(f"/webhooks/{pk}/action/", {"do": "delete"}).status_code in (302, 403, 404)
    with schema_context(cast.tenant.schema_name):
        assert Endpoint.objects.filter(pk=pk).exists()


def test_disabling_by_hand_shows_in_the_endpoints_history(cast: Cast, receiver: Receiver) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    page = client_for(cast.owner, cast.tenant)
    page.post(f"/webhooks/{made.endpoint.pk}/action/", {"do": "disable"})
    detail = page.get(f"/webhooks/{made.endpoint.pk}/").content.decode()
    assert "Enabled → Disabled" in detail and "Disabled by hand." in detail
    assert "Send a test event" not in detail and ">Enable<" in detail


def test_the_owner_edits_an_endpoint_and_a_bad_url_is_refused(
    cast: Cast, receiver: Receiver, settings: Any
) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    page = client_for(cast.owner, cast.tenant)
    saved = page.post(
        f"/webhooks/{made.endpoint.pk}/edit/",
        {"url": receiver.url, "events": ["reply.received"], "description": "CRM"},
    )
    assert saved.status_code == 302
    settings.NETGUARD_ALLOW_LOOPBACK = False
    refused = page.post(
        f"/webhooks/{made.endpoint.pk}/edit/",
        {"url": "https://10.0.0.1/x", "events": ["reply.received"]},
    )
    assert refused.status_code == 400 and b"public internet address" in refused.content
    with schema_context(cast.tenant.schema_name):
        endpoint = Endpoint.objects.get()
    assert (endpoint.url, endpoint.events, endpoint.description) == (
        receiver.url,
        ["reply.received"],
        "CRM",
    )
    viewer = client_for(cast.viewer, cast.tenant)
    assert b'id="webhook-edit"' not in viewer.get(f"/webhooks/{made.endpoint.pk}/").content
    denied = viewer.post(
        f"/webhooks/{made.endpoint.pk}/edit/", {"url": receiver.url, "events": ["message.sent"]}
    )
    assert denied.status_code == 403
