"""Issue 10, item 18: what a message holds. The open pixel only when the campaign tracks opens,
text/plain alone for a plain-text campaign, List-Id next to List-Unsubscribe, and the demo
campaign's messages scoring 0.5 or less on SpamAssassin's local rules (`spamassassin -L`: no
network tests)."""

from __future__ import annotations

import datetime as dt
import email
import re
import shutil
import subprocess
from email import policy

import pytest
from django_tenants.utils import schema_context

from campaigns.demo import DEMO_CAMPAIGN_CONTENT, DEMO_DOMAIN, DEMO_TEMPLATES
from campaigns.models import Campaign
from campaigns.rendering import compile_template, html_to_text
from campaigns.sending import compose as composer
from campaigns.tracking import links
from deliverability import dkim as signer
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db

SPAMASSASSIN = shutil.which("spamassassin")
BASE = "http://track.demo-agency.test.localhost:8000"
LEAD = {
    "email": "ada@prospects.example",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "custom": {},
}


def demo_message(cast: Cast, template: int = 0, **options: bool) -> bytes:
    """A demo template rendered for a demo lead and composed as the send path composes it."""
    _name, subject, html = DEMO_TEMPLATES[template]
    rendered = compile_template(subject, html, html_to_text(html)).render(lead=LEAD, seed="1:1")
    envelope = composer.Envelope(
        message_pk=4242,
        tenant_id=cast.tenant.pk,
        message_id=composer.new_message_id(DEMO_DOMAIN),
        from_name="Alex from Demo Agency",
        from_addr=f"alex@{DEMO_DOMAIN}",
        to_addr=LEAD["email"],  # type: ignore[arg-type]
        reply_to=f"alex@{DEMO_DOMAIN}",
        tracking_base=BASE,
        date=dt.datetime.now(dt.UTC),
        **{**DEMO_CAMPAIGN_CONTENT, **options},
    )
    signer.forget_keys()
    with schema_context(cast.tenant.schema_name):
        return composer.compose(rendered, envelope)


def spam_score(raw: bytes) -> tuple[float, str]:
    assert SPAMASSASSIN
    done = subprocess.run(  # noqa: S603 - a fixed argument list
        [SPAMASSASSIN, "-L", "-t"], input=raw, capture_output=True, timeout=120, check=True
    )
    report = done.stdout.decode(errors="replace")
    found = re.search(r"Content analysis details:\s+\((-?\d+(?:\.\d+)?) points", report)
    assert found, report[-2000:]
    return float(found.group(1)), report[report.find("Content analysis") :]


@pytest.mark.skipif(SPAMASSASSIN is None, reason="the spamassassin binary is not installed")
@pytest.mark.parametrize("template", [0, 1])
def test_the_demo_campaigns_messages_score_half_a_point_or_less(cast: Cast, template: int) -> None:
    score, report = spam_score(demo_message(cast, template))
    assert score <= 0.5, report
    plain, report = spam_score(demo_message(cast, template, plain_text_only=True))
    assert plain <= 0.5, report


def test_it_adds_the_pixel_only_when_the_campaign_tracks_opens(cast: Cast) -> None:
    tracked = email.message_from_bytes(demo_message(cast, track_opens=True), policy=policy.SMTP)
    quiet = email.message_from_bytes(demo_message(cast, track_opens=False), policy=policy.SMTP)
    for message, pixel in ((tracked, True), (quiet, False)):
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert ("/t/o/" in html) is pixel
        assert f'href="{BASE}/t/c/' in html  # clicks are tracked either way
        assert message["List-Id"] == f"<alex.{DEMO_DOMAIN}>"
        assert message["MIME-Version"] == "1.0"
        assert re.fullmatch(r"<[0-9a-f]{32}@demo-agency\.test>", message["Message-ID"])


def test_plain_text_only_sends_the_text_alone_with_urls_as_written(cast: Cast) -> None:
    raw = demo_message(cast, plain_text_only=True, track_opens=True)
    message = email.message_from_bytes(raw, policy=policy.SMTP)
    assert not message.defects and not message.is_multipart()
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    assert "https://penguinmails.example/tour" in body and "/t/" not in body
    assert b"<img" not in raw and b"text/html" not in raw
    # The unsubscribe pair is there all the same (RFC 8058).
    assert "/t/u/" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_new_campaign_tracks_no_opens_unless_asked(cast: Cast) -> None:
    api = client_for(cast.member, cast.tenant, api=True)
    quiet = api.post("/api/v1/campaigns", {"name": "Quiet"}, format="json")
    assert quiet.status_code == 201, quiet.content
    assert quiet.json()["track_opens"] is False and quiet.json()["plain_text_only"] is False
    pk = quiet.json()["id"]
    changed = api.patch(
        f"/api/v1/campaigns/{pk}", {"track_opens": True, "plain_text_only": True}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["track_opens"] is True and changed.json()["plain_text_only"] is True
    # The dashboard form carries both switches (unchecked boxes post nothing: off).
    page = client_for(cast.member, cast.tenant)
    form = page.get("/campaigns/new/").content.decode()
    assert 'name="track_opens"' in form and 'name="plain_text_only"' in form
    with schema_context(cast.tenant.schema_name):
        saved = Campaign.objects.get(pk=pk)
        assert saved.track_opens and saved.plain_text_only


def test_links_default_to_the_pixel_for_callers_that_do_not_say(cast: Cast) -> None:
    html, _ = links.track_html("<p>x</p>", BASE, cast.tenant.pk, 1)
    assert "/t/o/" in html
    html, _ = links.track_html("<p>x</p>", BASE, cast.tenant.pk, 1, pixel=False)
    assert "/t/o/" not in html
