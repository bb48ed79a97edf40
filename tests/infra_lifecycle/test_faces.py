"""Infrastructure through the dashboard, the API, the command and the admin: permissions, the
outsider, IP quarantine and the emergency migration."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from infrastructure.models import IpAddress, IpRole, IpStatus, VpsInstance, VpsStatus
from infrastructure.providers import LocalProvider
from infrastructure.services.ips import migrate_ip, quarantine_ip, sending_ips
from infrastructure.services.provisioning import provision_infrastructure
from penguinmails.errors import IllegalTransition
from penguinmails.models import Job
from tenants.models import User
from tests.api.conftest import assert_error
from tests.conftest import PASSWORD, Cast, client_for
from tests.infra_lifecycle.conftest import run_jobs, set_plan

pytestmark = pytest.mark.django_db(transaction=True)


def _provisioned(cast: Cast, plan: str = "growth") -> list[VpsInstance]:
    set_plan(cast.tenant, plan)
    servers = provision_infrastructure(cast.tenant, actor=cast.owner)
    run_jobs()
    return list(VpsInstance.objects.filter(pk__in=[v.pk for v in servers]))


def test_it_shows_progress_then_the_provisioned_servers_on_the_dashboard(
    cast: Cast, local_vps: LocalProvider
) -> None:
    set_plan(cast.tenant, "growth")
    owner = client_for(cast.owner, cast.tenant)
    page = owner.get("/infrastructure/").content.decode()
    assert "No servers yet" in page and 'id="provision"' in page

    response = owner.post("/infrastructure/provision/")
    assert response.status_code == 302
    vps = VpsInstance.objects.get(tenant=cast.tenant)
    page = owner.get("/infrastructure/").content.decode()
    assert 'hx-get="/infrastructure/progress/"' in page  # polls while provisioning runs
    assert "step 1 of 7" in page

    run_jobs()
    panel = owner.get("/infrastructure/progress/").content.decode()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.ACTIVE
    assert "hx-get" not in panel  # settled: polling stops
    assert vps.hostname in panel and vps.main_ip in panel and "Active" in panel
    assert vps.monthly_cost in panel
    assert vps.mailu_api_token.reveal() not in panel


def test_it_lets_members_read_but_only_owners_and_admins_provision(
    cast: Cast, local_vps: LocalProvider
) -> None:
    set_plan(cast.tenant, "growth")
    for user in (cast.member, cast.viewer):
        client = client_for(user, cast.tenant)
        page = client.get("/infrastructure/")
        assert page.status_code == 200 and 'id="provision"' not in page.content.decode()
        assert client.post("/infrastructure/provision/").status_code == 403
        api = client_for(user, cast.tenant, api=True)
        assert api.get("/api/v1/infrastructure").status_code == 200
        assert_error(api.post("/api/v1/infrastructure/provision"), 403)
    assert not VpsInstance.objects.exists() and not Job.objects.exists()

    api = client_for(cast.admin, cast.tenant, api=True)
    response = api.post("/api/v1/infrastructure/provision")
    assert response.status_code == 202
    assert [s["status"] for s in response.json()["servers"]] == ["requested"]
    assert_error(api.post("/api/v1/infrastructure/provision"), 409)  # the plan's one server


def test_it_refuses_provisioning_on_a_plan_without_servers_with_402(
    cast: Cast, local_vps: LocalProvider
) -> None:
    set_plan(cast.tenant, "starter")
    api = client_for(cast.owner, cast.tenant, api=True)
    error = assert_error(api.post("/api/v1/infrastructure/provision"), 402, "limit_reached")
    assert "Upgrade to Growth" in error["message"]
    assert not VpsInstance.objects.exists()


def test_it_lists_servers_ips_and_mail_servers_in_the_api_without_secrets(
    cast: Cast, local_vps: LocalProvider
) -> None:
    [vps] = _provisioned(cast)
    api = client_for(cast.viewer, cast.tenant, api=True)
    body = api.get("/api/v1/infrastructure").json()
    assert [s["name"] for s in body["servers"]] == [vps.name]
    assert body["servers"][0]["status"] == "active" and not body["in_progress"]
    assert [ip["address"] for ip in body["ips"]] == [vps.main_ip]
    assert body["ips"][0]["ptr_set"] is True
    assert body["mail_servers"][0]["kind"] == "sandbox"
    assert body["monthly_cost_cents"] == vps.monthly_cost_cents
    raw = json.dumps(body) + json.dumps(api.get(f"/api/v1/infrastructure/{vps.pk}").json())
    assert vps.mailu_api_token.reveal() not in raw and "token" not in raw
    detail = api.get(f"/api/v1/infrastructure/{vps.pk}").json()
    assert [t["to"] for t in detail["transitions"]][-1] == "active"


def test_it_hides_acme_infrastructure_from_the_outsider(
    cast: Cast, local_vps: LocalProvider
) -> None:
    [vps] = _provisioned(cast)
    jobs = Job.objects.count()
    own = client_for(cast.outsider, cast.other_tenant)
    assert vps.hostname not in own.get("/infrastructure/").content.decode()
    assert vps.hostname not in own.get("/infrastructure/progress/").content.decode()
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/infrastructure").json()["servers"] == []
    assert_error(api.get(f"/api/v1/infrastructure/{vps.pk}"), 404)
    # Provisioning on globex's host acts on globex (on the entry plan: refused), never on acme.
    assert api.post("/api/v1/infrastructure/provision").status_code == 402
    acme = client_for(cast.outsider, cast.tenant)
    for response in (acme.get("/infrastructure/"), acme.post("/infrastructure/provision/")):
        assert response.status_code in (302, 404)
        assert vps.hostname not in response.content.decode()
    assert VpsInstance.objects.count() == 1 and Job.objects.count() == jobs


def test_it_quarantines_and_migrates_sending_onto_a_clean_ip(
    cast: Cast, local_vps: LocalProvider
) -> None:
    servers = _provisioned(cast, "scale")  # 2 servers x 2 IPs
    ips = list(IpAddress.objects.filter(tenant=cast.tenant).order_by("id"))
    bad, clean = ips[0], ips[-1]
    quarantine_ip(bad, reason="listed on Spamhaus", actor=None)
    assert bad.address not in sending_ips(cast.tenant)
    with pytest.raises(IllegalTransition):
        migrate_ip(clean, bad, actor=None)  # a quarantined IP never takes over

    moved = migrate_ip(bad, clean, actor=None)
    bad.refresh_from_db()
    assert moved.status == IpStatus.WARMING and moved.role == IpRole.SENDING
    assert bad.replaced_by == moved and bad.role == IpRole.STANDBY
    assert bad.status == IpStatus.QUARANTINED and bad.quarantine_reason == "listed on Spamhaus"
    assert clean.address in sending_ips(cast.tenant)
    assert bad.address not in sending_ips(cast.tenant)
    assert len(servers) == 2


def test_it_runs_the_command_end_to_end(cast: Cast, local_vps: LocalProvider) -> None:
    set_plan(cast.tenant, "scale")
    out = StringIO()
    call_command("infra", "provision", "acme", "--wait", stdout=out)
    lines = out.getvalue().splitlines()
    assert any(line.endswith(": waiting_active") for line in lines)
    assert sum(line.endswith(": active") for line in lines) == 2

    out = StringIO()
    call_command("infra", "status", "acme", "--json", stdout=out)
    status = json.loads(out.getvalue())["acme"]
    assert [s["status"] for s in status["servers"]] == ["active", "active"]
    addresses = [ip["address"] for ip in status["ips"]]
    assert len(addresses) == 4

    call_command("infra", "ip", "quarantine", addresses[0], "--reason", "complaints", stdout=out)
    call_command("infra", "ip", "migrate", "--from", addresses[0], "--to", addresses[3], stdout=out)
    assert addresses[0] not in sending_ips(cast.tenant)
    assert IpAddress.objects.get(address=addresses[3]).status == IpStatus.WARMING

    out = StringIO()
    call_command("infra", "status", "acme", stdout=out)
    assert "quarantined" in out.getvalue() and "step" not in out.getvalue()

    call_command("infra", "deprovision", "acme", "--wait", stdout=StringIO())
    assert set(VpsInstance.objects.values_list("status", flat=True)) == {VpsStatus.TERMINATED}
    assert sending_ips(cast.tenant) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("provision", "nope"), "No tenant with slug 'nope'"),
        (("ip", "quarantine", "192.0.2.1", "--reason", "x"), "No live IP address 192.0.2.1"),
        (("ip", "quarantine", "192.0.2.1"), "--reason"),
        (("deprovision", "acme"), "has no servers to deprovision"),
        (("provision", "acme"), "includes no dedicated servers"),
    ],
)
def test_it_refuses_bad_command_arguments_with_the_reason(
    cast: Cast, local_vps: LocalProvider, args: tuple[str, ...], message: str
) -> None:
    set_plan(cast.tenant, "starter")
    with pytest.raises(CommandError, match=message):
        call_command("infra", *args, stdout=StringIO(), stderr=StringIO())


@pytest.fixture
def admin_client(cast: Cast) -> Client:
    staff = User.objects.create_superuser("staff@penguinmails.example.com", PASSWORD)
    return client_for(staff, None)


def test_it_runs_admin_actions_without_showing_secrets(
    cast: Cast, local_vps: LocalProvider, admin_client: Client
) -> None:
    [vps] = _provisioned(cast)
    page = admin_client.get(f"/admin/infrastructure/vpsinstance/{vps.pk}/change/")
    assert page.status_code == 200
    assert vps.mailu_api_token.reveal() not in page.content.decode()
    assert vps.mailu_api_token.token not in page.content.decode()
    assert admin_client.get("/admin/infrastructure/mailserver/").status_code == 200

    [ip] = vps.ips.all()
    url = "/admin/infrastructure/ipaddress/"
    ask = admin_client.post(url, {"action": "quarantine", "_selected_action": [ip.pk]})
    assert ask.status_code == 200 and "Why is it quarantined?" in ask.content.decode()
    done = admin_client.post(
        url, {"action": "quarantine", "_selected_action": [ip.pk], "reason": "blacklisted"}
    )
    assert done.status_code == 302
    ip.refresh_from_db()
    assert ip.status == IpStatus.QUARANTINED and ip.quarantine_reason == "blacklisted"
    admin_client.post(url, {"action": "release", "_selected_action": [ip.pk]})
    ip.refresh_from_db()
    assert ip.status == IpStatus.RELEASED

    vps_url = "/admin/infrastructure/vpsinstance/"
    admin_client.post(vps_url, {"action": "retry", "_selected_action": [vps.pk]})
    vps.refresh_from_db()
    assert vps.status == VpsStatus.ACTIVE  # only failed servers are retried
    admin_client.post(vps_url, {"action": "terminate", "_selected_action": [vps.pk]})
    run_jobs()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.TERMINATED
    assert local_vps.find_server(vps.name) is None
