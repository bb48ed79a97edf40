"""The real Hostwinds client against a local server speaking Hostwinds' wire protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infrastructure.providers import (
    HostwindsProvider,
    NotSupported,
    ProviderError,
    ServerNotFound,
    ServerStatus,
    VpsProvider,
)
from tests.fakes.hostwinds import FakeHostwinds

KEY = "hw-secret-key-123"
SPEC = {"plan": "rid-small", "location": "2", "image": "tmpl-ubuntu-2404"}


@pytest.fixture
def fake() -> Iterator[FakeHostwinds]:
    with FakeHostwinds(api_key=KEY, allowed_ips={"127.0.0.1"}) as server:
        yield server


def client(fake: FakeHostwinds, **kwargs: object) -> HostwindsProvider:
    options: dict[str, object] = {
        "api_url": fake.url,
        "min_interval": 0,
        "find_after_create_delay": 0,
        "timeout": 2.0,
    }
    options.update(kwargs)
    return HostwindsProvider(KEY, **options)  # type: ignore[arg-type]


def test_it_implements_the_provider_protocol(fake: FakeHostwinds) -> None:
    assert isinstance(client(fake), VpsProvider)


def test_it_creates_a_server_and_follows_it_to_active(fake: FakeHostwinds) -> None:
    hw = client(fake)
    ref = hw.create_server(name="pm-acme-1", ssh_keys=["deploy", "ops"], **SPEC)

    assert ref.created is True
    assert ref.id in fake.instances
    order = fake.requests[fake.actions().index("add_instance")]
    assert order["srvrname"] == ["pm-acme-1"]
    assert order["rid"] == ["rid-small"] and order["location_id"] == ["2"]
    assert order["keys[]"] == ["deploy", "ops"]  # PHP array notation
    assert order["billingcycle"] == ["monthly"]
    assert all(ct.startswith("application/x-www-form-urlencoded") for ct in fake.content_types)

    statuses = [hw.get_server(ref.id).status for _ in range(4)]
    assert statuses[:2] == [ServerStatus.PENDING, ServerStatus.PENDING]
    assert statuses[-1] is ServerStatus.ACTIVE
    info = hw.get_server(ref.id)
    assert info.name == "pm-acme-1"
    assert info.main_ip == fake.instances[ref.id].main_ip
    assert info.secondary_ips == ()
    assert "active" in info.raw_status


def test_it_creates_one_server_when_the_step_runs_twice(fake: FakeHostwinds) -> None:
    hw = client(fake)
    first = hw.create_server(name="pm-acme-1", **SPEC)
    second = hw.create_server(name="pm-acme-1", **SPEC)

    assert len(fake.instances) == 1
    assert second.id == first.id
    assert second.created is False
    assert fake.actions().count("add_instance") == 1


def test_it_finds_a_new_server_that_is_listed_late(fake: FakeHostwinds) -> None:
    fake.list_delay_polls = 2
    ref = client(fake).create_server(name="pm-slow", **SPEC)
    assert ref.created is True and ref.id in fake.instances


def test_it_reports_a_transient_error_when_the_order_never_shows(fake: FakeHostwinds) -> None:
    fake.list_delay_polls = 10
    hw = client(fake, find_after_create_attempts=2)
    with pytest.raises(ProviderError) as caught:
        hw.create_server(name="pm-slow", **SPEC)
    assert caught.value.permanent is False

    # The retry finds the server by name once it is listed, instead of ordering a second one.
    fake.list_delay_polls = 0
    fake._hidden.clear()
    again = hw.create_server(name="pm-slow", **SPEC)
    assert again.created is False
    assert len(fake.instances) == 1


def test_it_treats_an_error_inside_http_200_as_permanent(fake: FakeHostwinds) -> None:
    with pytest.raises(ProviderError) as caught:
        client(fake).create_server(
            name="x", plan="rid-small", location="99", image="tmpl-ubuntu-2404"
        )
    assert caught.value.permanent is True
    assert "Location Id is invalid." in caught.value.message
    assert caught.value.code == "5530001"
    assert fake.instances == {}


def test_it_explains_the_ipv4_allow_list_refusal(fake: FakeHostwinds) -> None:
    fake.allowed_ips = {"203.0.113.7"}  # the key is allow-listed for another machine
    with pytest.raises(ProviderError) as caught:
        client(fake).list_servers()
    assert caught.value.permanent is True
    assert "allow-list" in caught.value.message
    assert "IPv4" in caught.value.message


def test_it_never_shows_the_api_key(fake: FakeHostwinds) -> None:
    fake.allowed_ips = {"203.0.113.7"}
    hw = client(fake)
    with pytest.raises(ProviderError) as caught:
        hw.list_servers()
    assert KEY not in str(caught.value)
    assert KEY not in repr(hw)
    assert fake.requests[-1]["API"] == [KEY]  # it went in the form body


def test_it_treats_a_wrong_key_as_permanent(fake: FakeHostwinds) -> None:
    hw = HostwindsProvider("wrong", api_url=fake.url, min_interval=0)
    with pytest.raises(ProviderError) as caught:
        hw.list_servers()
    assert caught.value.permanent is True


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_it_treats_server_errors_as_transient(fake: FakeHostwinds, status: int) -> None:
    fake.fail_next(status=status)
    with pytest.raises(ProviderError) as caught:
        client(fake).list_servers()
    assert caught.value.permanent is False
    assert client(fake).list_servers() == []  # the next call goes through


def test_it_treats_an_html_page_with_200_as_transient(fake: FakeHostwinds) -> None:
    fake.fail_next(status=200, body="<html>Down for maintenance</html>")
    with pytest.raises(ProviderError) as caught:
        client(fake).list_servers()
    assert caught.value.permanent is False


def test_it_treats_a_timeout_as_transient(fake: FakeHostwinds) -> None:
    fake.fail_next(delay=1.5)
    with pytest.raises(ProviderError) as caught:
        client(fake, timeout=0.3).list_servers()
    assert caught.value.permanent is False
    assert "timed out" in caught.value.message


def test_it_treats_a_refused_connection_as_transient() -> None:
    fake = FakeHostwinds(api_key=KEY)
    url = fake.url
    fake.stop()  # nothing listens there any more
    with pytest.raises(ProviderError) as caught:
        HostwindsProvider(KEY, api_url=url, min_interval=0).list_servers()
    assert caught.value.permanent is False


def test_it_refuses_to_order_an_ip_the_api_cannot_order(fake: FakeHostwinds) -> None:
    hw = client(fake)
    ref = hw.create_server(name="pm-acme-1", **SPEC)
    with pytest.raises(NotSupported) as caught:
        hw.add_secondary_ip(ref.id)
    assert caught.value.permanent is True

    # Staff orders it in the portal; the next look discovers it.
    for _ in range(3):
        hw.get_server(ref.id)
    ip = fake.attach_ip(ref.id)
    assert hw.get_server(ref.id).secondary_ips == (ip,)


def test_it_sets_reverse_dns(fake: FakeHostwinds) -> None:
    hw = client(fake)
    ref = hw.create_server(name="pm-acme-1", **SPEC)
    main_ip = fake.instances[ref.id].main_ip
    hw.set_reverse_dns(ref.id, main_ip, "mail.acme.example")
    assert fake.instances[ref.id].ptr == {main_ip: "mail.acme.example"}
    sent = fake.requests[-1]
    assert sent["action"] == ["set_rdns"] and sent["rdns"] == ["mail.acme.example"]

    with pytest.raises(ProviderError) as caught:
        hw.set_reverse_dns(ref.id, "192.0.2.1", "mail.acme.example")
    assert caught.value.permanent is True


def test_it_terminates_a_server_once_and_again_without_error(fake: FakeHostwinds) -> None:
    hw = client(fake)
    ref = hw.create_server(name="pm-acme-1", **SPEC)
    hw.terminate_server(ref.id)
    assert fake.instances == {}
    hw.terminate_server(ref.id)  # a retried step: already gone is done
    with pytest.raises(ServerNotFound):
        hw.get_server(ref.id)
    assert hw.find_server("pm-acme-1") is None


def test_it_stops_and_starts_a_server_for_billing_suspension(fake: FakeHostwinds) -> None:
    hw = client(fake)
    ref = hw.create_server(name="pm-acme-2", **SPEC)
    hw.get_server(ref.id)  # built
    hw.stop_server(ref.id)
    assert fake.actions()[-1] == "shutdown"
    stopped = hw.get_server(ref.id)
    assert stopped.status is ServerStatus.STOPPED and stopped.main_ip  # address kept
    hw.start_server(ref.id)
    assert fake.actions()[-1] == "boot" and hw.get_server(ref.id).status is ServerStatus.ACTIVE
    with pytest.raises(ProviderError) as refused:
        hw.stop_server("999999")
    assert refused.value.permanent


def test_it_sends_user_data_only_under_a_configured_field(fake: FakeHostwinds) -> None:
    ref = client(fake).create_server(name="a", user_data="#cloud-config\n{}", **SPEC)
    assert ref.user_data_applied is False  # the vendor field is unverified: not guessed

    fake.user_data_field = "user_data"
    ref = client(fake, user_data_field="user_data").create_server(
        name="b", user_data="#cloud-config\n{}", **SPEC
    )
    assert ref.user_data_applied is True
    assert fake.instances[ref.id].user_data == "#cloud-config\n{}"


def test_it_lists_servers_with_their_addresses(fake: FakeHostwinds) -> None:
    hw = client(fake, find_after_create_attempts=1)
    one = hw.create_server(name="pm-1", **SPEC)
    hw.create_server(name="pm-2", **SPEC)
    for _ in range(3):
        hw.get_server(one.id)
    extra = fake.attach_ip(one.id)
    servers = {s.name: s for s in hw.list_servers()}
    assert set(servers) == {"pm-1", "pm-2"}
    assert servers["pm-1"].status is ServerStatus.ACTIVE
    assert servers["pm-1"].secondary_ips == (extra,)
    assert servers["pm-2"].status is ServerStatus.PENDING
