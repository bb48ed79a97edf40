"""The local provider: records only, loopback addresses, same rules as the real one."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from infrastructure.providers import (
    HostwindsProvider,
    LocalProvider,
    ProviderError,
    ServerNotFound,
    ServerStatus,
    VpsProvider,
    get_vps_provider,
)

SPEC = {"plan": "small", "location": "local", "image": "mailu"}


def test_it_implements_the_provider_protocol() -> None:
    assert isinstance(LocalProvider(), VpsProvider)


def test_it_creates_a_pending_server_that_becomes_active() -> None:
    provider = LocalProvider(activate_after_polls=1)
    ref = provider.create_server(name="pm-demo-1", **SPEC)
    assert provider.get_server(ref.id).status is ServerStatus.PENDING
    info = provider.get_server(ref.id)
    assert info.status is ServerStatus.ACTIVE
    assert info.main_ip is not None and ipaddress.ip_address(info.main_ip).is_loopback
    assert info.main_ip != "127.0.0.1"  # that one belongs to our sandbox servers


def test_it_creates_one_server_when_the_step_runs_twice() -> None:
    provider = LocalProvider()
    first = provider.create_server(name="pm-demo-1", **SPEC)
    second = provider.create_server(name="pm-demo-1", **SPEC)
    assert (second.id, second.created) == (first.id, False)
    assert len(provider.list_servers()) == 1


def test_it_hands_out_distinct_secondary_ips_up_to_its_limit() -> None:
    provider = LocalProvider(max_secondary_ips=2)
    ref = provider.create_server(name="pm-demo-1", **SPEC)
    ips = [provider.add_secondary_ip(ref.id), provider.add_secondary_ip(ref.id)]
    assert len(set(ips)) == 2
    assert provider.get_server(ref.id).secondary_ips == tuple(ips)
    with pytest.raises(ProviderError) as caught:
        provider.add_secondary_ip(ref.id)
    assert caught.value.permanent is True


def test_it_records_reverse_dns_for_its_own_addresses_only() -> None:
    provider = LocalProvider()
    ref = provider.create_server(name="pm-demo-1", **SPEC)
    ip = provider.get_server(ref.id).main_ip
    assert ip is not None
    provider.set_reverse_dns(ref.id, ip, "mail.demo.test")
    assert provider.reverse_dns(ip) == "mail.demo.test"
    with pytest.raises(ProviderError):
        provider.set_reverse_dns(ref.id, "127.0.0.250", "mail.demo.test")


def test_it_terminates_idempotently_and_frees_the_name() -> None:
    provider = LocalProvider()
    ref = provider.create_server(name="pm-demo-1", **SPEC)
    provider.terminate_server(ref.id)
    provider.terminate_server(ref.id)
    with pytest.raises(ServerNotFound):
        provider.get_server(ref.id)
    assert provider.list_servers() == []
    again = provider.create_server(name="pm-demo-1", **SPEC)
    assert again.created is True and again.id != ref.id


def test_it_shares_state_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "vps.json"
    ref = LocalProvider(path).create_server(name="pm-demo-1", **SPEC)
    # Another process (here: another instance) sees the same server and addresses.
    other = LocalProvider(path)
    assert other.create_server(name="pm-demo-1", **SPEC).id == ref.id
    ip = other.add_secondary_ip(ref.id)
    assert LocalProvider(path).get_server(ref.id).secondary_ips == (ip,)


@override_settings(VPS_PROVIDER="", HOSTWIND_API_KEY="")
def test_it_chooses_the_local_provider_without_a_key() -> None:
    assert isinstance(get_vps_provider(), LocalProvider)


@override_settings(VPS_PROVIDER="", HOSTWIND_API_KEY="k", HOSTWINDS_API_URL="http://127.0.0.1:9/x")
def test_it_chooses_hostwinds_when_a_key_is_set() -> None:
    provider = get_vps_provider()
    assert isinstance(provider, HostwindsProvider)
    assert provider.api_url == "http://127.0.0.1:9/x"


@override_settings(VPS_PROVIDER="hostwinds", HOSTWIND_API_KEY="")
def test_it_refuses_hostwinds_without_a_key() -> None:
    with pytest.raises(ImproperlyConfigured, match="HOSTWIND_API_KEY"):
        get_vps_provider()


@override_settings(VPS_PROVIDER="local", HOSTWIND_API_KEY="k")
def test_it_honours_an_explicit_local_choice() -> None:
    assert isinstance(get_vps_provider(), LocalProvider)
