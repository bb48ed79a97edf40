"""A delete that other rows still point at is a 409 in the API's format, never a 500."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Campaign, CampaignStatus, Message
from tests.campaign_ops.conftest import World
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_refuses_to_delete_a_campaign_its_messages_point_at(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        assert Message.objects.filter(campaign=world.launch).exists()
        # Only a draft may be deleted, and no draft has messages in the product's own flows;
        # a row put back to draft by hand (staff, a restore) must still not turn into a 500.
        Campaign.objects.filter(pk=world.launch.pk).update(status=CampaignStatus.DRAFT)
    api = client_for(cast.owner, cast.tenant, api=True)
    response = api.delete(f"/api/v1/campaigns/{world.launch.pk}")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "in_use"
    with schema_context(cast.tenant.schema_name):
        assert Campaign.objects.filter(pk=world.launch.pk).exists()
        assert Message.objects.filter(campaign=world.launch).exists()
