"""`tenants demo` (run by `make run`): a fresh login every run, and an offline workspace that
already has a local server, a verified sending domain and working mailboxes."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings as SettingsWrapper

from campaigns.models import Campaign, EmailTemplate
from deliverability.models import Mailbox, MailboxStatus, SendingDomain
from infrastructure.models import IpAddress, VpsInstance
from tenants.models import Membership, Tenant
from tests.conftest import Cast

# The seeding runs jobs through the queue runner, which works in autocommit like a worker.
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


@pytest.fixture
def offline(settings: SettingsWrapper, tmp_path: Path) -> None:
    # A transactional test's flush empties the tenant table but leaves the schema behind.
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA IF EXISTS "t_demo" CASCADE')
    settings.DEBUG = True
    port = _free_port()
    settings.SANDBOX_DNS_PORT = port
    settings.SANDBOX_DNS_ZONES = tmp_path / "zones.json"
    settings.DNS_RESOLVERS = [f"127.0.0.1:{port}"]
    settings.DNS_PROVIDER = "local"
    settings.LOCAL_VPS_STATE_FILE = tmp_path / "vps.json"
    settings.VPS_PROVIDER = "local"


def run_demo() -> str:
    out = io.StringIO()
    call_command("tenants", "demo", stdout=out)
    return out.getvalue()


def password_in(output: str) -> str:
    match = re.search(r"Password:\s+(\S+)", output)
    assert match, output
    return match.group(1)


def test_it_seeds_a_working_offline_workspace(cast: Cast, offline: None) -> None:
    output = run_demo()
    demo = Tenant.objects.get(slug="demo")
    vps = VpsInstance.objects.get(tenant=demo)
    assert vps.status == "active" and vps.main_ip.startswith("127.0.0.")
    assert IpAddress.objects.filter(tenant=demo, ptr_set=True).exists()
    with schema_context(demo.schema_name):
        domain = SendingDomain.objects.get(name="demo-agency.test")
        assert domain.status == "verified"
        boxes = list(Mailbox.objects.all())
    assert len(boxes) == 2 and all(b.status == MailboxStatus.ACTIVE for b in boxes)
    assert "demo-agency.test (verified)" in output
    with schema_context(demo.schema_name):
        campaign = Campaign.objects.get(name="Demo outreach")
        assert campaign.status == "running"
        assert campaign.steps.count() == 2
        assert set(campaign.mailboxes.all()) == set(boxes)
        assert campaign.lead_lists.get().leads.count() == 6
    assert "Demo campaign:" in output


def test_it_makes_the_demo_login_fresh_on_every_run(cast: Cast, offline: None) -> None:
    first = run_demo()
    assert "http://demo.localhost:8000/login/" in first
    assert "demo@example.com" in first
    old_password = password_in(first)
    demo = Tenant.objects.get(slug="demo")
    assert demo.name == "Demo Agency"
    user = authenticate(None, email="demo@example.com", password=old_password)
    assert user is not None
    assert Membership.objects.get(tenant=demo, user=user).is_owner

    second = run_demo()
    new_password = password_in(second)
    assert new_password != old_password
    assert authenticate(None, email="demo@example.com", password=old_password) is None
    assert authenticate(None, email="demo@example.com", password=new_password) == user
    assert Tenant.objects.filter(slug="demo").count() == 1
    # Seeding is idempotent: one server, one domain, two mailboxes.
    assert VpsInstance.objects.filter(tenant=demo).count() == 1
    with schema_context(demo.schema_name):
        assert SendingDomain.objects.count() == 1 and Mailbox.objects.count() == 2
        assert Campaign.objects.count() == 1 and EmailTemplate.objects.count() == 2
