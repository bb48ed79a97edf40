"""Provisioning end to end through the queue runner: the local provider (the default path) and
the real Hostwinds client against the Hostwinds fake, with Mailu checked against the Mailu fake."""

from __future__ import annotations

import pytest
from django.conf import settings

from billing.entitlements import LimitReached
from deliverability.dns.records import reverse_name
from infrastructure.models import (
    IpAddress,
    IpStatus,
    MailServer,
    MailServerKind,
    MailServerStatus,
    VpsInstance,
    VpsStatus,
)
from infrastructure.providers import LocalProvider
from infrastructure.services.ips import sending_ips
from infrastructure.services.provisioning import (
    CREATE_TASK,
    deprovision_infrastructure,
    provision_infrastructure,
    retry_provisioning,
)
from penguinmails import states
from penguinmails.errors import Conflict, IllegalTransition
from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from penguinmails.sandbox.dns import ZoneStore
from tests.conftest import Cast
from tests.fakes.hostwinds import FakeHostwinds
from tests.fakes.mailu import FakeMailu
from tests.infra_lifecycle.conftest import run_jobs, set_plan

pytestmark = pytest.mark.django_db(transaction=True)

HAPPY_PATH = [
    VpsStatus.REQUESTED,
    VpsStatus.CREATING,
    VpsStatus.WAITING_ACTIVE,
    VpsStatus.CONFIGURING,
    VpsStatus.NETWORK,
    VpsStatus.MAIL_SERVER_CHECK,
    VpsStatus.ACTIVE,
]


def path_of(vps: VpsInstance) -> list[str]:
    moves = [(t.from_status, t.to_status) for t in states.history(vps)]
    return [moves[0][0], *[to for _, to in moves]] if moves else [vps.status]


def test_it_provisions_a_local_server_through_every_step(
    cast: Cast, local_vps: LocalProvider
) -> None:
    set_plan(cast.tenant, "scale")  # 2 medium servers, 4 dedicated IPs

    servers = provision_infrastructure(cast.tenant, actor=cast.owner)
    assert [v.status for v in servers] == [VpsStatus.REQUESTED] * 2
    run_jobs()
    zones = ZoneStore(settings.SANDBOX_DNS_ZONES)

    for vps in VpsInstance.objects.filter(tenant=cast.tenant):
        assert vps.status == VpsStatus.ACTIVE, vps.last_error
        assert path_of(vps) == HAPPY_PATH
        assert vps.size == "medium" and vps.monthly_cost_cents > 0
        info = local_vps.get_server(vps.provider_id)
        assert info.main_ip == vps.main_ip and info.main_ip.startswith("127.0.0.")
        ips = list(vps.ips.all())
        assert len(ips) == 2 and sum(ip.is_primary for ip in ips) == 1
        for ip in ips:
            assert ip.status == IpStatus.ASSIGNED and ip.ptr_set
            assert local_vps.reverse_dns(ip.address) == vps.hostname == ip.ptr_hostname
            # Served by the sandbox DNS, forward-confirmed: PTR to the host, its A back to the IP.
            assert [r.value for r in zones.lookup(reverse_name(ip.address), "PTR")] == [
                vps.hostname
            ]
            assert ip.address in {r.value for r in zones.lookup(vps.hostname, "A")}
        server = MailServer.objects.get(vps=vps)
        assert server.kind == MailServerKind.SANDBOX
        assert server.status == MailServerStatus.ACTIVE and server.api_token is None
    assert len(sending_ips(cast.tenant)) == 4
    # Cloud-init user data went to the provider, with the generated token.
    vps = servers[0]
    vps.refresh_from_db()
    assert vps.mailu_api_token.reveal() in _user_data(local_vps, vps.provider_id)


def _user_data(provider: LocalProvider, server_id: str) -> str:
    with provider._state() as state:  # the recorded order, as the provider keeps it
        return state["servers"][server_id]["user_data"]


def test_it_refuses_a_plan_without_servers_with_the_plan_that_lifts_it(cast: Cast) -> None:
    set_plan(cast.tenant, "starter")
    with pytest.raises(LimitReached) as refused:
        provision_infrastructure(cast.tenant, actor=cast.owner)
    assert "Starter plan includes no dedicated servers" in refused.value.message
    assert "Upgrade to Growth" in refused.value.message
    assert not VpsInstance.objects.filter(tenant=cast.tenant).exists()


def test_it_refuses_servers_beyond_the_plan(cast: Cast, local_vps: LocalProvider) -> None:
    set_plan(cast.tenant, "growth")
    provision_infrastructure(cast.tenant, actor=cast.owner)
    with pytest.raises(Conflict):
        provision_infrastructure(cast.tenant, actor=cast.owner)
    assert VpsInstance.objects.filter(tenant=cast.tenant).count() == 1


def test_it_creates_one_server_when_the_create_step_runs_twice(
    cast: Cast, hostwinds: FakeHostwinds, mailu: FakeMailu
) -> None:
    set_plan(cast.tenant, "growth")
    [vps] = provision_infrastructure(cast.tenant, actor=cast.owner)
    # The server's Mailu is configured with the token we generated (cloud-init): so is the fake.
    mailu.token = vps.mailu_api_token.reveal()
    first = Job.objects.get(task=CREATE_TASK)
    # A worker killed after the order went out: the step's job runs again from the start.
    runner.run(first.pk, worker_id="w1")
    VpsInstance.objects.filter(pk=vps.pk).update(status=VpsStatus.CREATING)
    Job.objects.filter(pk=first.pk).update(status=JobStatus.QUEUED)
    runner.run(first.pk, worker_id="w2")
    vps.refresh_from_db()
    assert hostwinds.actions().count("add_instance") == 1
    assert len(hostwinds.instances) == 1 and vps.provider_id in hostwinds.instances

    run_jobs()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.ACTIVE, vps.last_error
    assert len(hostwinds.instances) == 1
    # Hostwinds cannot order extra IPs through its API: growth has 1 IP, the main one.
    [ip] = vps.ips.all()
    assert ip.address == vps.main_ip and ip.ptr_set
    assert hostwinds.instances[vps.provider_id].ptr[ip.address] == vps.hostname
    server = MailServer.objects.get(vps=vps)
    assert server.kind == MailServerKind.MAILU and server.status == MailServerStatus.ACTIVE
    assert server.api_token.reveal() == mailu.token
    assert [r.authorization for r in mailu.seen("GET", "/api/v1/domain")] == [
        f"Bearer {mailu.token}"
    ]


def test_it_fails_at_once_on_the_allow_list_refusal_without_retrying(
    cast: Cast, hostwinds: FakeHostwinds
) -> None:
    set_plan(cast.tenant, "growth")
    hostwinds.allowed_ips = {"203.0.113.9"}  # the worker's address is not on the key's list
    [vps] = provision_infrastructure(cast.tenant, actor=cast.owner)

    ran = run_jobs()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.FAILED
    assert "allow-list" in vps.last_error.lower() or "not authorized" in vps.last_error.lower()
    assert [(j.task, j.status, j.attempts) for j in ran] == [(CREATE_TASK, JobStatus.COMPLETED, 1)]
    assert path_of(vps) == [VpsStatus.REQUESTED, VpsStatus.CREATING, VpsStatus.FAILED]
    assert states.history(vps)[-1].reason == vps.last_error
    assert hostwinds.instances == {}


def test_it_retries_a_transient_provider_error_then_fails_with_the_reason(
    cast: Cast, hostwinds: FakeHostwinds
) -> None:
    set_plan(cast.tenant, "growth")
    for _ in range(40):  # the provider answers 503 to everything for a while
        hostwinds.fail_next(status=503)
    [vps] = provision_infrastructure(cast.tenant, actor=cast.owner)

    ran = run_jobs()
    vps.refresh_from_db()
    assert [j.status for j in ran[:-1]] == [JobStatus.RETRYING] * 4
    assert ran[-1].status == JobStatus.COMPLETED and ran[-1].attempts == 5
    assert vps.status == VpsStatus.FAILED
    assert "gave up after 5 attempts" in vps.last_error and "503" in vps.last_error
    assert hostwinds.instances == {}


def test_it_gets_over_one_transient_error(
    cast: Cast, hostwinds: FakeHostwinds, mailu: FakeMailu
) -> None:
    set_plan(cast.tenant, "growth")
    hostwinds.fail_next(status=502)
    [vps] = provision_infrastructure(cast.tenant, actor=cast.owner)
    mailu.token = vps.mailu_api_token.reveal()

    ran = run_jobs()
    vps.refresh_from_db()
    assert ran[0].status == JobStatus.RETRYING
    assert vps.status == VpsStatus.ACTIVE and vps.last_error == ""
    assert len(hostwinds.instances) == 1


def test_it_does_not_retry_a_bad_mailu_token_and_retry_recovers(
    cast: Cast, hostwinds: FakeHostwinds, mailu: FakeMailu
) -> None:
    set_plan(cast.tenant, "growth")
    [vps] = provision_infrastructure(cast.tenant, actor=cast.owner)
    # The fake Mailu keeps its own token: ours is refused with 403.
    run_jobs()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.FAILED
    assert "403" in vps.last_error or "token" in vps.last_error.lower()
    assert len(mailu.requests) == 1  # one call: a bad token is never retried (Mailu lock-out)
    server = MailServer.objects.get(vps=vps)
    assert server.status == MailServerStatus.UNREACHABLE
    assert vps.mailu_api_token.reveal() not in vps.last_error

    # Staff fix the server's token and retry: the same server is found by name, not re-bought.
    mailu.token = vps.mailu_api_token.reveal()
    retry_provisioning(vps, actor=None)
    run_jobs()
    vps.refresh_from_db()
    server.refresh_from_db()
    assert vps.status == VpsStatus.ACTIVE and server.status == MailServerStatus.ACTIVE
    assert hostwinds.actions().count("add_instance") == 1
    with pytest.raises(IllegalTransition):
        retry_provisioning(vps, actor=None)  # only a failed server can be retried


def test_it_deprovisions_terminating_servers_and_releasing_ips(
    cast: Cast, local_vps: LocalProvider
) -> None:
    set_plan(cast.tenant, "growth")
    [vps] = provision_infrastructure(cast.tenant, actor=cast.owner)
    run_jobs()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.ACTIVE
    zones = ZoneStore(settings.SANDBOX_DNS_ZONES)
    assert zones.lookup(vps.hostname, "A") and zones.lookup(reverse_name(vps.main_ip), "PTR")

    deprovision_infrastructure(cast.tenant, actor=cast.owner)
    run_jobs()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.TERMINATED
    assert local_vps.find_server(vps.name) is None
    # The sandbox DNS no longer names a server that is gone.
    assert not zones.lookup(vps.hostname) and not zones.lookup(reverse_name(vps.main_ip))
    assert set(IpAddress.objects.filter(vps=vps).values_list("status", flat=True)) == {
        IpStatus.RELEASED
    }
    assert MailServer.objects.get(vps=vps).status == MailServerStatus.RETIRED
    assert sending_ips(cast.tenant) == []
    with pytest.raises(Conflict):
        deprovision_infrastructure(cast.tenant, actor=cast.owner)
