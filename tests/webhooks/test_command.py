"""`manage.py webhooks`: list, deliveries, replay, enable and disable for one tenant, `--json`
for scripts, and a non-zero exit saying why on a bad tenant, id or move."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from tests.conftest import Cast
from tests.webhooks.conftest import Receiver, make_endpoint, run_deliveries
from webhooks.models import Delivery, DeliveryStatus
from webhooks.services import delivery as delivery_svc

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command("webhooks", *args, stdout=out)
    return out.getvalue()


def test_ops_list_read_the_log_replay_and_disable(cast: Cast, receiver: Receiver) -> None:
    made = make_endpoint(cast.tenant, cast.owner, receiver.url)
    with schema_context(cast.tenant.schema_name):
        [queued] = delivery_svc.emit("message.sent", {"message_id": 1})
    listed = json.loads(run("list", "--tenant", "acme", "--json"))
    assert [(e["id"], e["url"], e["status"]) for e in listed] == [
        (made.endpoint.pk, receiver.url, "enabled")
    ]
    with pytest.raises(CommandError, match="cannot move|pending"):
        run("replay", "--tenant", "acme", str(queued.pk))  # still pending: nothing to replay
    run_deliveries()
    log = json.loads(run("deliveries", "--tenant", "acme", str(made.endpoint.pk), "--json"))
    assert [(d["id"], d["status"], d["last_status_code"]) for d in log] == [
        (queued.pk, "succeeded", 200)
    ]
    run("replay", "--tenant", "acme", str(queued.pk))
    run_deliveries()
    assert len(receiver.received) == 2
    assert "disabled" in run("disable", "--tenant", "acme", str(made.endpoint.pk))
    with schema_context(cast.tenant.schema_name):
        assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_it_exits_non_zero_saying_why(cast: Cast, receiver: Receiver) -> None:
    make_endpoint(cast.tenant, cast.owner, receiver.url)
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        run("list", "--tenant", "nope")
    with pytest.raises(CommandError, match="No endpoint 999999 in acme"):
        run("deliveries", "--tenant", "acme", "999999")
    with pytest.raises(CommandError, match="No delivery 999999 in acme"):
        run("replay", "--tenant", "acme", "999999")
    # globex has no endpoint: acme's ids do not exist there.
    assert json.loads(run("list", "--tenant", "globex", "--json")) == []
