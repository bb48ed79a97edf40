"""The campaign option `delay_on_out_of_office`: off by default, set through the API and the
dashboard form, refused when malformed, invisible and unchangeable for another tenant."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Campaign
from campaigns.services.feedback import return_day
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def test_the_option_is_off_by_default_and_set_through_the_api_and_the_form(cast: Cast) -> None:
    api = client_for(cast.member, cast.tenant, api=True)
    made = api.post("/api/v1/campaigns", {"name": "Patient"}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["delay_on_out_of_office"] is False
    pk = made.json()["id"]
    bad = api.patch(f"/api/v1/campaigns/{pk}", {"delay_on_out_of_office": "soon"}, format="json")
    assert bad.status_code == 400 and "delay_on_out_of_office" in str(bad.json()), bad.content
    changed = api.patch(f"/api/v1/campaigns/{pk}", {"delay_on_out_of_office": True}, format="json")
    assert changed.status_code == 200 and changed.json()["delay_on_out_of_office"] is True
    with schema_context(cast.tenant.schema_name):
        assert Campaign.objects.get(pk=pk).delay_on_out_of_office
    page = client_for(cast.member, cast.tenant)
    assert 'name="delay_on_out_of_office"' in page.get("/campaigns/new/").content.decode()
    detail = page.get(f"/campaigns/{pk}/").content.decode()
    # A draft's page is its settings form, the box ticked.
    assert re.search(r'name="delay_on_out_of_office"[^>]*checked', detail)
    # Another tenant's owner: no such campaign, nothing changed.
    outsider = client_for(cast.outsider, cast.other_tenant, api=True)
    assert outsider.get(f"/api/v1/campaigns/{pk}").status_code == 404
    off = {"delay_on_out_of_office": False}
    assert outsider.patch(f"/api/v1/campaigns/{pk}", off, format="json").status_code == 404
    with schema_context(cast.tenant.schema_name):
        assert Campaign.objects.get(pk=pk).delay_on_out_of_office


@pytest.mark.parametrize(
    ("stated", "expected"),
    [
        ("2026-12-20", date(2026, 12, 20)),
        ("12 January", date(2027, 1, 12)),  # no year, already past this year: next January
        ("January 12, 2027", date(2027, 1, 12)),
        ("20th of December", date(2026, 12, 20)),
        ("2026-11-30", None),  # past
        ("05/06/2027", None),  # day and month unclear: never guessed
        ("next week sometime", None),
        (None, None),
    ],
)
def test_the_return_day_read_from_what_the_auto_reply_states(
    stated: str | None, expected: date | None
) -> None:
    assert return_day(stated, date(2026, 12, 4)) == expected
