"""The ladder's staff faces: the admin's "Escalate" takes the next step at once, the command
moves tenants as of a given time and refuses a bad one, the admin lists the steps; a tenant
without Stripe or servers goes through it too (nothing to stop at its level)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from billing.models import Dunning, DunningStep
from billing.services import dunning
from infrastructure.models import VpsInstance, VpsStatus
from infrastructure.providers import LocalProvider
from infrastructure.services.states import transition_vps
from tenants.models import User
from tenants.services.tenancy import sending_hold
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def staff_client() -> Client:
    staff = User.objects.create_user("staff@penguinmails.test", "pw", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    return client


def test_staff_escalate_a_tenant_step_by_step(cast: Cast) -> None:
    state = dunning.start(cast.tenant, subscription=None, at=timezone.now())
    client = staff_client()
    listing = client.get("/admin/billing/dunning/")
    assert listing.status_code == 200 and "acme" in listing.content.decode()
    action = {"action": "escalate_now", "_selected_action": [state.pk]}
    assert client.post("/admin/billing/dunning/", action).status_code == 302
    state.refresh_from_db()
    assert state.status == "sending_paused"
    assert sending_hold(cast.tenant) == dunning.HOLD_REASON
    assert sending_hold(cast.other_tenant) == ""
    client.post("/admin/billing/dunning/", action)
    state.refresh_from_db()
    assert state.status == "suspended" and state.stopped["infrastructure"] == {
        "infrastructure.servers": {"vps": []}
    }
    steps = client.get("/admin/billing/dunningstep/").content.decode()
    assert "Servers suspended (stopped, IPs kept)" in steps
    # Another workspace's members see none of it; acme's own billing page shows the steps.
    other = client_for(cast.outsider, cast.other_tenant).get("/billing/").content.decode()
    assert 'id="dunning"' not in other and 'id="billing-banner"' not in other
    own = client_for(cast.admin, cast.tenant).get("/billing/").content.decode()
    assert 'id="dunning-steps"' in own and 'id="billing-banner"' in own
    # Every member sees the banner, billing access or not.
    home = client_for(cast.viewer, cast.tenant).get("/").content.decode()
    assert "your servers are stopped" in home


def test_the_command_moves_tenants_as_of_a_time(cast: Cast) -> None:
    since = timezone.now() - timedelta(days=1)
    dunning.start(cast.tenant, subscription=None, at=since)
    out = StringIO()
    later = (since + timedelta(days=7, hours=1)).isoformat()
    call_command("billing", "dunning", "--now", later, stdout=out)
    assert "acme: day 7, sending_paused" in out.getvalue()
    # Catching up a missed week: no stale reminder, the pause (and its own email).
    steps = DunningStep.objects.order_by("at", "pk")
    assert [(s.kind, s.day) for s in steps] == [("past_due", 0), ("sending_paused", 7)]
    with pytest.raises(CommandError, match="ISO-8601"):
        call_command("billing", "dunning", "--now", "next tuesday")
    assert Dunning.objects.get(tenant=cast.tenant).status == "sending_paused"


def test_only_the_servers_the_ladder_stopped_are_started_again(
    cast: Cast, provider: LocalProvider
) -> None:
    ours, staffs = (_server(cast, provider, name) for name in ("acme-d1", "acme-d2"))
    transition_vps(staffs, VpsStatus.SUSPENDED, reason="staff: abuse report")
    dunning.start(cast.tenant, subscription=None, at=timezone.now())
    dunning.escalate(cast.tenant)
    assert dunning.escalate(cast.tenant) == "suspended"
    state = Dunning.objects.get(tenant=cast.tenant)
    assert state.stopped["infrastructure"]["infrastructure.servers"] == {"vps": [ours.pk]}
    assert provider.get_server(ours.provider_id).status == "stopped"
    assert dunning.restore(cast.tenant, reason="paid").status == "clear"
    assert VpsInstance.objects.get(pk=ours.pk).status == "active"
    assert provider.get_server(ours.provider_id).status == "active"
    assert VpsInstance.objects.get(pk=staffs.pk).status == "suspended"  # staff's call stands


def _server(cast: Cast, provider: LocalProvider, name: str) -> VpsInstance:
    ref = provider.create_server(name=name, plan="small", location="local", image="debian")
    provider.get_server(ref.id)
    return VpsInstance.objects.create(
        tenant=cast.tenant, provider="local", provider_id=ref.id, name=name,
        hostname=f"mail.{name}.test", size="small", status=VpsStatus.ACTIVE,
    )  # fmt: skip
