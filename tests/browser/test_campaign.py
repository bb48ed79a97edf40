"""A tenant runs a campaign in a real headless Chromium: imports a CSV of leads, builds a
two-step campaign, starts it, sees its messages arrive in the sandbox inbox, opens one and
clicks its link, and watches the campaign's stats move.

The worker's part (the import job, the scheduler tick, the send jobs, the tracking flush) is
played by the queue's own runner in the test thread between browser steps: the same code a
worker runs, in a deterministic order. SMTP is the real sandbox server on a free port.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings as SettingsWrapper

from campaigns.models import Campaign, Message
from campaigns.services.templates import create_template
from campaigns.tracking import buffer
from campaigns.tracking.app import with_tracking
from deliverability.models import Mailbox, SendingDomain
from penguinmails.models import RunningCampaign
from penguinmails.queue import live
from penguinmails.queue.producer import enqueue
from penguinmails.sandbox.smtp import start_sandbox_smtp
from penguinmails.sandbox.store import SandboxStore
from tenants.models import Tenant
from tests.browser.conftest import CHROMIUM
from tests.conftest import Cast
from tests.domains.conftest import principal, run_jobs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-and-unusual-passphrase"
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CSV = (
    "Email,First Name,Company,Time Zone,Favourite Colour\n"
    "ann@alpha.example,Ann,Alpha,Europe/Paris,teal\n"
    "bob@beta.example,Bob,Beta Co,America/New_York,red\n"
    "not-an-address,Nobody,Nowhere,,\n"
    "cy@gamma.example,Cy,Gamma,,blue\n"
)


@pytest.fixture
def person(browser: Any) -> Iterator[Any]:
    """A page in a browser that says what a person's desktop Chrome says. Headless Chromium
    announces itself as HeadlessChrome, which tracking rightly counts as a link scanner, and a
    context's user-agent override does not reach images in a sandboxed srcdoc frame (the
    sandbox mail viewer's), so this is a browser launched with the flag."""
    person_browser = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--headless", "--no-sandbox", "--disable-gpu", f"--user-agent={DESKTOP_CHROME}"],
    )
    context = person_browser.new_context()
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()
    person_browser.close()


@pytest.fixture
def tracking_served(live_server: Any) -> Iterator[None]:
    """The live server runs Django's handler; production's WSGI entry point puts the tracking
    app in front of it (penguinmails/wsgi.py). Do the same here for the pixel and click."""
    httpd = live_server.thread.httpd
    original = httpd.get_app()
    httpd.set_app(with_tracking(original))
    yield
    httpd.set_app(original)


@pytest.fixture
def sandbox(tmp_path: Path, settings: SettingsWrapper) -> Iterator[dict[str, Any]]:
    maildir = tmp_path / "maildir"
    controller = start_sandbox_smtp("127.0.0.1", 0, maildir, user="sandbox", password="sandbox")
    settings.DEBUG = True  # the sandbox mail pages are DEBUG-only
    settings.SANDBOX_MAILDIR = maildir
    yield {"port": int(controller.port), "maildir": maildir}
    controller.stop()


def _sending_setup(tenant: Tenant, owner: Any, port: int) -> None:
    """A verified sending domain and an active mailbox on the sandbox server (issue 4 built
    the pages for these; this test is about campaigns)."""
    with schema_context(tenant.schema_name):
        SendingDomain.objects.create(
            name="acme-mail.example",
            tracking_host="track.acme-mail.example",
            dkim_selector="pm1",
            dkim_public_key="x",
            dkim_private_key="x",
            dmarc_rua="dmarc@acme-mail.example",
            status="verified",
            verified_at=timezone.now(),
        )
        Mailbox.objects.create(
            address="alex@acme-mail.example",
            display_name="Alex at Acme",
            kind="other",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            smtp_username="sandbox",
            smtp_password="sandbox",
            daily_limit=500,
            status="active",
        )
        p = principal(tenant, owner)
        create_template(
            p,
            name="First touch",
            subject="Hello {{first_name|there}}",
            html_body="<p>Hi {{first_name|there}} at {{company}}, "
            '<a href="https://acme.example/offer">see our offer</a>.</p>',
        )
        create_template(
            p,
            name="Follow-up",
            subject="Following up, {{first_name|there}}",
            html_body="<p>Did you see it, {{first_name|there}}?</p>",
        )


def _wait_for_hit(kind: str, message_pks: set[int], *, timeout: float = 15.0) -> None:
    """Poll the tracking buffer until it holds a `kind` hit on one of the messages."""
    deadline = time.monotonic() + timeout
    while True:
        raw = live.client().lrange(buffer.EVENTS_KEY, 0, -1)
        events = [buffer.Event.decode(item) for item in raw]
        if any(e and e.kind == kind and e.message_pk in message_pks for e in events):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind!r} hit recorded within {timeout}s: {raw}")
        time.sleep(0.05)


def test_it_runs_a_two_step_campaign_from_csv_to_stats(
    person: Any, site: str, tracking_served: None, cast: Cast, sandbox: dict[str, Any],
    settings: SettingsWrapper, tmp_path: Path,
) -> None:  # fmt: skip
    page = person
    port = site.rsplit(":", 1)[1]
    settings.TRACKING_BASE_URL = site
    settings.TRACKING_CUSTOM_HOSTS = False
    tenant, owner = cast.tenant, cast.owner
    owner.set_password(PASSWORD)
    owner.save()
    _sending_setup(tenant, owner, sandbox["port"])
    base = f"http://{tenant.slug}.localhost:{port}"

    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")

    # 1. Import the CSV: upload, confirm the mapping, watch the progress bar finish.
    csv_file = tmp_path / "prospects.csv"
    csv_file.write_text(CSV)
    page.goto(f"{base}/campaigns/leads/imports/new/")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_label("Add to list (optional)").fill("Browser prospects")
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("button", name="Start import").click()
    run_jobs(limit=200)
    page.locator('#import-progress [data-status="completed"]').wait_for()
    assert page.locator('[data-count="created"]').inner_text() == "3"
    assert page.locator('[data-count="failed"]').inner_text() == "1"

    # 2. Build a two-step campaign: settings, then two steps, then start.
    page.goto(f"{base}/campaigns/new/")
    page.get_by_label("Name").fill("Browser launch")
    for day in ("Sat", "Sun"):
        page.get_by_label(day).check()
    page.get_by_label("Window start").fill("00:00")
    page.get_by_label("Window end").fill("23:59")
    page.get_by_label("Min gap (s)").fill("0")
    page.get_by_label("Max gap (s)").fill("0")
    page.get_by_label("Browser prospects").check()
    page.get_by_label(re.compile("alex@acme-mail.example")).check()
    page.get_by_label("Track opens").check()  # off by default; this test counts an open
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r"/campaigns/\d+/$"))
    for order, template_name in enumerate(("First touch", "Follow-up"), start=1):
        form = page.locator("form", has=page.get_by_role("button", name="Add step"))
        form.get_by_label("Wait").fill("0")
        form.get_by_label("Unit").select_option("hours")
        form.get_by_label("Template").select_option(label=template_name)
        form.get_by_role("button", name="Add step").click()
        page.locator(f"#steps .step:nth-of-type({order}) li", has_text=template_name).wait_for()
    page.get_by_role("button", name="Start", exact=True).click()
    page.locator('h1 [data-status="running"]').wait_for()
    with schema_context(tenant.schema_name):
        campaign = Campaign.objects.get(name="Browser launch")

    # 3. The worker's turn: the tick schedules step 1, send jobs deliver it; the next tick
    # schedules step 2 (no delay) once step 1 is sent.
    for _ in range(3):
        # The scheduler revisits a campaign a little later; this test does not wait for that.
        RunningCampaign.objects.update(next_run_at=timezone.now())
        enqueue("campaigns.tick")
        run_jobs(limit=200)
    with schema_context(tenant.schema_name):
        sent = Message.objects.filter(campaign=campaign, status="sent")
        assert sent.count() == 6, list(
            Message.objects.values_list("to_email", "status", "stop_reason")
        )
        # A person reads mail a while after it arrives (opens within seconds count as machine).
        Message.objects.filter(campaign=campaign).update(
            sent_at=timezone.now() - dt.timedelta(hours=1)
        )
    captured = SandboxStore(sandbox["maildir"]).list_messages()
    assert sorted(m.subject for m in captured) == sorted(
        ["Hello Ann", "Hello Bob", "Hello Cy"]
        + ["Following up, Ann", "Following up, Bob", "Following up, Cy"]
    )

    # 4. The sandbox inbox: open Ann's first message (its pixel loads), click its link. Playwright
    # does not see the requests of the viewer's sandboxed frame, so wait for what they leave: the
    # tracking app buffers each hit before it answers.
    with schema_context(tenant.schema_name):
        ann = set(
            Message.objects.filter(campaign=campaign, to_email="ann@alpha.example").values_list(
                "pk", flat=True
            )
        )
    page.goto(f"{base}/sandbox/mail/")
    page.get_by_role("link", name="Hello Ann").click()
    _wait_for_hit(buffer.OPEN, ann)
    frame = page.frame_locator('iframe[title="HTML part"]')
    frame.get_by_role("link", name="see our offer").click()
    _wait_for_hit(buffer.CLICK, ann)
    enqueue("tracking.flush")
    run_jobs(limit=200)

    # 5. The campaign page shows what happened.
    page.goto(f"{base}/campaigns/{campaign.pk}/")
    total = page.locator("#stats-total")
    total.wait_for()
    assert total.locator('[data-counter="sent"]').inner_text() == "6"
    assert total.locator('[data-counter="opened"]').inner_text().split()[0] == "1"
    assert total.locator('[data-counter="clicked"]').inner_text().split()[0] == "1"
    assert total.locator('[data-counter="machine"]').inner_text() == "0 / 0"
    page.locator("#campaign-progress #message-status").wait_for()
