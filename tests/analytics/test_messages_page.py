"""A campaign's messages page: every message with the check that held or stopped it, filters
by status and step, and the outsider from another tenant who sees none of it."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Message
from tests.analytics.conftest import World
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def test_it_shows_a_campaigns_messages_with_why_they_stopped(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        Message.objects.filter(campaign=world.campaign, status="queued").update(
            stopped_by="mailbox_under_limit", stop_reason="Every mailbox is at its daily limit."
        )
    web = client_for(cast.viewer, cast.tenant)
    url = f"/campaigns/{world.campaign.pk}/messages/"
    html = web.get(url).content.decode()
    assert html.count('<tr id="message-') == 7
    assert "<code>mailbox_under_limit</code> Every mailbox is at its daily limit." in html
    bounced = web.get(f"{url}?status=bounced").content.decode()
    assert bounced.count('<tr id="message-') == 1 and "lead3@example.com" in bounced
    step2 = web.get(f"{url}?step={world.step2.pk}").content.decode()
    assert step2.count('<tr id="message-') == 3
    # Unknown filter values are ignored, not an error page.
    assert web.get(f"{url}?status=nonsense&step=x").content.decode().count('<tr id="message-') == 7
    progress = web.get(f"/campaigns/{world.campaign.pk}/progress/").content.decode()
    assert f'href="{url}"' in progress


def test_it_shows_an_outsider_no_messages(cast: Cast, world: World) -> None:
    url = f"/campaigns/{world.campaign.pk}/messages/"
    assert client_for(cast.outsider, cast.other_tenant).get(url).status_code == 404
    intruder = client_for(cast.outsider, cast.tenant).get(url)
    assert intruder.status_code in (302, 404)
    assert intruder.status_code != 302 or intruder["Location"].startswith("/login/")
