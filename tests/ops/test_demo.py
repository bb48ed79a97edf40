"""`tenants demo` (run by `make run`): a fresh login every run, and an offline workspace that
already has a local server, a verified sending domain and working mailboxes."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import socket
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings as SettingsWrapper

from campaigns.models import Campaign, CampaignDailyStat, EmailTemplate, Message
from deliverability.models import Mailbox, MailboxStatus, SendingDomain
from infrastructure.models import IpAddress, VpsInstance
from penguinmails.models import MailboxPoll, RunningCampaign
from penguinmails.queue.producer import enqueue
from penguinmails.sandbox.dns import ZoneStore, start_sandbox_dns
from tenants.models import Membership, Tenant
from tests.conftest import Cast
from tests.domains.conftest import run_jobs
from tests.ops.conftest import LiveSandbox

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
        cursor.execute('DROP SCHEMA IF EXISTS "t_warmpool" CASCADE')  # its warm-up partners
    settings.DEBUG = True
    port = _free_port()
    settings.SANDBOX_DNS_PORT = port
    settings.SANDBOX_DNS_ZONES = tmp_path / "zones.json"
    settings.SANDBOX_RULES = tmp_path / "sandbox-rules.json"
    settings.SANDBOX_IMAP_DIR = tmp_path / "dovecot"
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


def test_it_refuses_a_dns_server_on_the_port_that_is_not_this_checkouts_sandbox(
    cast: Cast, offline: None, settings: SettingsWrapper
) -> None:
    """Issue 10, item 2: a DNS server on SANDBOX_DNS_PORT that does not serve our zone file (here
    another sandbox with its own in-memory zone) is never adopted: the seeding stops naming the
    setting, before any domain is added or checked against it."""
    foreign_store = ZoneStore()
    foreign = start_sandbox_dns("127.0.0.1", settings.SANDBOX_DNS_PORT, foreign_store)
    try:
        with pytest.raises(CommandError) as refused:
            run_demo()
    finally:
        foreign.stop()
    message = str(refused.value)
    port = settings.SANDBOX_DNS_PORT
    assert f"port {port}" in message and "SANDBOX_DNS_PORT" in message
    assert "answers DNS but is not this checkout's sandbox" in message
    assert "set SANDBOX_DNS_PORT to a free port" in message
    demo = Tenant.objects.get(slug="demo")
    with schema_context(demo.schema_name):
        assert not SendingDomain.objects.exists()
    assert foreign_store.records() == []
    # The probe's sentinel record is gone from our zone file again.
    ours = ZoneStore(settings.SANDBOX_DNS_ZONES)
    assert not [r for r in ours.records() if "sentinel" in r.name]


def test_it_adopts_the_dns_server_on_the_port_when_it_serves_our_zone_file(
    cast: Cast, offline: None, settings: SettingsWrapper
) -> None:
    """The Procfile's `dns` process (here: in this process) serving the same zone file is ours:
    the seeding uses it, and the demo domain verifies through it."""
    ours = ZoneStore(settings.SANDBOX_DNS_ZONES)
    server = start_sandbox_dns("127.0.0.1", settings.SANDBOX_DNS_PORT, ours)
    try:
        output = run_demo()
    finally:
        server.stop()
    assert "demo-agency.test (verified)" in output
    assert not [r for r in ours.records() if "sentinel" in r.name]


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


def test_it_sends_the_demo_campaign_into_the_sandbox_and_tracks_it(
    cast: Cast, offline: None, sandbox_smtp: LiveSandbox, settings: SettingsWrapper
) -> None:
    """Issue 5, item 9: under `make run` the demo campaign's messages arrive in the sandbox
    inbox, and opening one and clicking its link shows on the campaign's numbers. The worker's
    part is played by the queue's runner; the tracking requests go through the WSGI entry
    point the web server runs."""
    settings.SANDBOX_SMTP_PORT = sandbox_smtp.port
    settings.SANDBOX_SMTP_USER = sandbox_smtp.user
    settings.SANDBOX_SMTP_PASSWORD = sandbox_smtp.password
    settings.TRACKING_BASE_URL = "http://localhost:8000"
    run_demo()
    demo = Tenant.objects.get(slug="demo")
    with schema_context(demo.schema_name):
        assert {m.smtp_port for m in Mailbox.objects.all()} == {sandbox_smtp.port}
        # The poller reads the demo mailboxes in the sandbox Dovecot (what comes back shows).
        boxes = list(Mailbox.objects.all())
        assert {(m.imap_host, m.imap_port, m.imap_username) for m in boxes} == {
            (settings.SANDBOX_IMAP_HOST, settings.SANDBOX_IMAP_PORT, m.address) for m in boxes
        }
        polled = set(MailboxPoll.objects.filter(tenant=demo).values_list("mailbox_id", flat=True))
        assert polled == {m.pk for m in boxes}
        # The demo's gaps are seconds apart; this test does not wait for them.
        Campaign.objects.filter(name="Demo outreach").update(min_gap_seconds=0, max_gap_seconds=0)
    RunningCampaign.objects.update(next_run_at=timezone.now())
    enqueue("campaigns.tick")
    run_jobs(limit=200)
    captured = sandbox_smtp.store.list_messages()
    assert len(captured) == 6, [m.subject for m in captured]
    assert all(m.envelope_from.endswith("@demo-agency.test") for m in captured)
    first = captured[0]
    with schema_context(demo.schema_name):
        message = Message.objects.get(message_id=first.message["Message-ID"])
        assert message.status == "sent"
        Message.objects.filter(pk=message.pk).update(
            sent_at=timezone.now() - dt.timedelta(minutes=5)  # read a while after it arrived
        )

    # Links use the verified tracking host, as a `.localhost` name a browser here reaches. The
    # demo campaign does not track opens (careful cold senders don't): no pixel, a tracked link.
    tracked = "http://track.demo-agency.test.localhost:8000"
    assert "/t/o/" not in (first.html or "")
    click = re.search(rf'href="{tracked}(/t/c/[^"]+)"', first.html or "")
    assert click, first.html
    browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0"
    status, headers = _wsgi_get(html.unescape(click.group(1)), browser)
    assert status.startswith("302") and headers["Location"].startswith("https://penguinmails.")
    enqueue("tracking.flush")
    run_jobs(limit=200)
    with schema_context(demo.schema_name):
        message.refresh_from_db()
        # A click is also an open (the reader saw the message), pixel or not.
        assert message.first_clicked_at and message.first_opened_at
        totals = CampaignDailyStat.objects.filter(campaign=message.campaign).aggregate(
            sent=Sum("sent"), opened=Sum("opened"), clicked=Sum("clicked")
        )
    assert totals == {"sent": 6, "opened": 1, "clicked": 1}


def _wsgi_get(path: str, user_agent: str) -> tuple[str, dict[str, str]]:
    from penguinmails.wsgi import application

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(
        PATH_INFO=path, HTTP_HOST="localhost:8000", HTTP_USER_AGENT=user_agent,
        REMOTE_ADDR="198.51.100.7",
    )  # fmt: skip
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    body = application(environ, start_response)
    b"".join(body)
    return seen["status"], seen["headers"]
