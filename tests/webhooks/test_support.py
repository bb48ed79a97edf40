"""Staff see a tenant's webhook endpoints and recent deliveries read-only through support access
(the admin's tenant page), each look audited; the secret and the payloads never appear."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from tenants.models import AuditEvent, User
from tenants.support import SUPPORT_LOOK, look_into_tenant
from tests.conftest import PASSWORD, Cast
from tests.webhooks.conftest import Receiver, make_endpoint, run_deliveries
from webhooks.services import delivery as delivery_svc

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_see_endpoints_and_deliveries_but_no_secret(cast: Cast, receiver: Receiver) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    with schema_context(cast.tenant.schema_name):
        delivery_svc.emit("message.sent", {"message_id": 5, "to": "private-lead@example.com"})
    run_deliveries()
    staff = User.objects.create_superuser("support@penguinmails.example.com", PASSWORD)

    look = look_into_tenant(
        cast.tenant, actor=staff, reason="Ticket 77: webhooks stopped arriving",
        panels=["webhooks", "webhook_deliveries"],
    )  # fmt: skip

    endpoints, deliveries = look.panels
    [row] = endpoints.rows
    assert row[0] == receiver.url and row[2] == "enabled"
    [sent] = deliveries.rows
    assert sent[2:6] == ["message.sent", "succeeded", "1", "200"]
    shown = repr(look.panels)
    assert made.secret not in shown and made.secret.removeprefix("whsec_") not in shown
    assert "private-lead@example.com" not in shown  # no payloads
    assert AuditEvent.objects.filter(tenant=cast.tenant, action=SUPPORT_LOOK).count() == 1
