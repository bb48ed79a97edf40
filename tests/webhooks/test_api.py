"""/api/v1/webhooks: owners and admins register, change and delete endpoints and read the secret;
members and viewers read only; another workspace sees none of it; URLs that reach internal
addresses are refused with 400 on `url` (SSRF), and again at delivery (DNS rebinding)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks import Webhook, WebhookVerificationError

from penguinmails.sandbox.dns import SandboxDnsServer, ZoneRecord
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for
from tests.domains.conftest import dns_server  # noqa: F401  (fixture)
from tests.webhooks.conftest import Receiver, make_endpoint, run_deliveries
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint
from webhooks.services import delivery as delivery_svc

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1/webhooks"


def body(url: str, events: list[str] | None = None) -> dict[str, Any]:
    return {"url": url, "events": events or ["message.sent", "reply.received"]}


def test_the_owner_registers_an_endpoint_and_sees_the_secret_once_then_on_request(
    cast: Cast, receiver: Receiver
) -> None:
    api = client_for(cast.owner, cast.tenant, api=True)
    created = api.post(API, body(receiver.url, ["reply.received", "message.sent"]), format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["secret"].startswith("whsec_")
    assert data["events"] == ["message.sent", "reply.received"]  # the catalogue's order
    listed = api.get(API).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["url"] for r in rows] == [receiver.url]
    assert "secret" not in rows[0]
    assert api.get(f"{API}/{data['id']}/secret").json() == {"secret": data["secret"]}


def test_a_test_event_reaches_the_endpoint_and_shows_in_the_delivery_log(
    cast: Cast, receiver: Receiver
) -> None:
    api = client_for(cast.admin, cast.tenant, api=True)
    data = api.post(API, body(receiver.url), format="json").json()
    queued = api.post(f"{API}/{data['id']}/test")
    assert queued.status_code == 202, queued.content
    run_deliveries()
    [got] = receiver.received
    assert Webhook(data["secret"]).verify(got.body, got.headers)["type"] == "webhook.test"
    log = api.get(f"{API}/{data['id']}/deliveries").json()
    [row] = log["results"] if isinstance(log, dict) else log
    assert row["status"] == "succeeded"
    assert row["attempt_log"][0]["status_code"] == 200


def test_a_failed_delivery_is_replayed_through_the_api(cast: Cast, receiver: Receiver) -> None:
    receiver.statuses = [410, 200]
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    api = client_for(cast.owner, cast.tenant, api=True)
    api.post(f"{API}/{made.endpoint.pk}/test")
    with schema_context(cast.tenant.schema_name):
        Delivery.objects.update(round_attempts=99)  # this round has no attempt left
    run_deliveries()
    with schema_context(cast.tenant.schema_name):
        failed = Delivery.objects.get()
    assert failed.status == DeliveryStatus.FAILED
    replayed = api.post(f"{API}/{made.endpoint.pk}/deliveries/{failed.pk}/replay")
    assert replayed.status_code == 202, replayed.content
    run_deliveries()
    with schema_context(cast.tenant.schema_name):
        assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
        assert Attempt.objects.count() == 2
    assert_error(api.post(f"{API}/{made.endpoint.pk}/deliveries/999999/replay"), 404)


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_read_but_cannot_write(
    cast: Cast, receiver: Receiver, role: str
) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    api = client_for(getattr(cast, role), cast.tenant, api=True)
    assert api.get(f"{API}/{made.endpoint.pk}").status_code == 200
    assert_error(api.post(API, body(receiver.url), format="json"), 403)
    assert_error(
        api.patch(f"{API}/{made.endpoint.pk}", {"events": ["message.opened"]}, format="json"), 403
    )
    assert_error(api.delete(f"{API}/{made.endpoint.pk}"), 403)
    assert_error(api.get(f"{API}/{made.endpoint.pk}/secret"), 403)
    assert_error(api.post(f"{API}/{made.endpoint.pk}/test"), 403)
    with schema_context(cast.tenant.schema_name):
        assert list(Endpoint.objects.values_list("events", flat=True)) == [["message.sent"]]


def test_the_outsider_sees_and_changes_nothing(cast: Cast, receiver: Receiver) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    pk = made.endpoint.pk
    own_host = client_for(cast.outsider, cast.other_tenant, api=True)
    listed = own_host.get(API).json()
    assert (listed["results"] if isinstance(listed, dict) else listed) == []
    for call in (
        own_host.get(f"{API}/{pk}"),
        own_host.get(f"{API}/{pk}/secret"),
        own_host.get(f"{API}/{pk}/deliveries"),
        own_host.post(f"{API}/{pk}/test"),
        own_host.delete(f"{API}/{pk}"),
    ):
        assert_error(call, 404)
    acme_host = client_for(cast.outsider, cast.tenant, api=True)
    assert acme_host.get(f"{API}/{pk}").status_code in (401, 403)
    key = key_client(cast.other_tenant, role="admin", host=cast.tenant)
    assert key.client.get(f"{API}/{pk}").status_code in (401, 403)
    with schema_context(cast.tenant.schema_name):
        assert Endpoint.objects.filter(pk=pk).exists()


def test_bad_input_is_a_400_naming_the_field(cast: Cast, receiver: Receiver) -> None:
    api = client_for(cast.owner, cast.tenant, api=True)

    def field_of(payload: dict[str, Any]) -> str:
        fields = assert_error(api.post(API, payload, format="json"), 400)["fields"]
        [name] = {key.split(".")[0] for key in fields}
        return name

    assert field_of(body(receiver.url, ["lead.exploded"])) == "events"
    assert field_of({"url": receiver.url, "events": []}) == "events"
    assert field_of(body("ftp://example.com/x")) == "url"
    assert field_of(body("not a url")) == "url"
    assert field_of(body("https://user:pw@example.com/x")) == "url"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://10.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://loopback.rebind.test/hook",  # the DNS says 127.0.0.1
        "https://internal.rebind.test/hook",  # the DNS says 192.168.1.20
    ],
)
def test_it_refuses_urls_that_reach_internal_addresses(
    cast: Cast,
    settings: Any,
    dns_server: SandboxDnsServer,  # noqa: F811
    url: str,
) -> None:
    settings.NETGUARD_ALLOW_LOOPBACK = False  # production
    dns_server.store.add(ZoneRecord.make("loopback.rebind.test", "A", "127.0.0.1"))
    dns_server.store.add(ZoneRecord.make("internal.rebind.test", "A", "192.168.1.20"))
    api = client_for(cast.owner, cast.tenant, api=True)
    error = assert_error(api.post(API, body(url), format="json"), 400)
    assert "public internet address" in error["fields"]["url"][0]
    with schema_context(cast.tenant.schema_name):
        assert not Endpoint.objects.exists()


def test_a_name_that_resolves_elsewhere_at_delivery_is_refused_before_connecting(
    cast: Cast,
    receiver: Receiver,
    dns_server: SandboxDnsServer,  # noqa: F811
) -> None:
    """DNS rebinding: the name pointed at the (local, allowed) receiver when saved, and points
    at a private address when the event goes: refused, nothing sent, the attempt logged."""
    dns_server.store.add(ZoneRecord.make("hooks.rebind.test", "A", "127.0.0.1"))
    made = make_endpoint(cast.tenant, cast.owner, f"http://hooks.rebind.test:{receiver.port}/in")
    dns_server.store.remove("hooks.rebind.test")
    dns_server.store.add(ZoneRecord.make("hooks.rebind.test", "A", "10.9.8.7"))
    api = client_for(cast.owner, cast.tenant, api=True)
    assert api.post(f"{API}/{made.endpoint.pk}/test").status_code == 202

    run_deliveries()

    assert receiver.received == []
    with schema_context(cast.tenant.schema_name):
        [attempt] = Attempt.objects.all()
        delivery = Delivery.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("Refused") and "public internet address" in attempt.error
    assert delivery.status == DeliveryStatus.PENDING  # retried later, per the schedule


def test_the_owner_changes_disables_enables_and_deletes_an_endpoint(
    cast: Cast, receiver: Receiver
) -> None:
    api = client_for(cast.owner, cast.tenant, api=True)
    pk = api.post(API, body(receiver.url), format="json").json()["id"]
    changed = api.patch(f"{API}/{pk}", {"events": ["lead.unsubscribed"], "enabled": False},
                        format="json")  # fmt: skip
    assert changed.status_code == 200, changed.content
    assert (changed.json()["events"], changed.json()["status"]) == (
        ["lead.unsubscribed"],
        "disabled",
    )
    assert changed.json()["disabled_reason"] == "Disabled by hand."
    assert_error(api.post(f"{API}/{pk}/test"), 409)  # disabled: nothing is sent
    with schema_context(cast.tenant.schema_name):
        assert delivery_svc.emit("lead.unsubscribed", {"lead_id": 1}) == []
    enabled = api.patch(f"{API}/{pk}", {"enabled": True}, format="json").json()
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", "")
    with schema_context(cast.tenant.schema_name):
        assert len(delivery_svc.emit("lead.unsubscribed", {"lead_id": 1})) == 1
    assert api.delete(f"{API}/{pk}").status_code == 204
    assert_error(api.get(f"{API}/{pk}"), 404)


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(
    cast: Cast, receiver: Receiver
) -> None:
    api = client_for(cast.owner, cast.tenant, api=True)
    created = api.post(API, body(receiver.url), format="json").json()
    old = created["secret"]
    rotated = api.post(f"{API}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert api.get(f"{API}/{created['id']}/secret").json() == {"secret": new}
    assert_error(
        client_for(cast.member, cast.tenant, api=True).post(f"{API}/{created['id']}/rotate-secret"),
        403,
    )
    api.post(f"{API}/{created['id']}/test")
    run_deliveries()
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    # A receiver still holding the old secret, and one already on the new, both verify.
    assert Webhook(old).verify(got.body, got.headers)["type"] == "webhook.test"
    assert Webhook(new).verify(got.body, got.headers)["type"] == "webhook.test"
    with schema_context(cast.tenant.schema_name):
        # The grace period is over: only the new secret signs.
        Endpoint.objects.update(previous_secret_expires_at=timezone.now())
    api.post(f"{API}/{created['id']}/test")
    run_deliveries()
    last = receiver.received[-1]
    assert Webhook(new).verify(last.body, last.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(last.body, last.headers)
