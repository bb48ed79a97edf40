"""An extra IP the provider's API cannot order waits as "awaiting order"; once staff attach it in
the provider's portal, the periodic discovery job picks it up, assigns it and sets its PTR."""

from __future__ import annotations

import pytest

from billing.models import Plan
from infrastructure.models import IpStatus, VpsStatus
from infrastructure.services.provisioning import DISCOVER_TASK, provision_infrastructure
from penguinmails.queue import runner
from penguinmails.queue.producer import enqueue
from tests.conftest import Cast
from tests.fakes.hostwinds import FakeHostwinds
from tests.fakes.mailu import FakeMailu
from tests.infra_lifecycle.conftest import run_jobs, set_plan

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_discovers_an_ip_staff_attached_in_the_portal(
    cast: Cast, hostwinds: FakeHostwinds, mailu: FakeMailu
) -> None:
    growth = set_plan(cast.tenant, "growth")
    # One server with two dedicated IPs: the main one and one Hostwinds' API cannot order.
    two_ips = Plan.objects.create(
        slug="growth-2ip", name="Growth 2 IPs", monthly_price=growth.monthly_price,
        limits={**growth.limits, "dedicated_ips": 2, "vps_count": 1}, is_public=False,
    )  # fmt: skip
    set_plan(cast.tenant, two_ips.slug)
    [vps] = provision_infrastructure(cast.tenant, actor=cast.owner)
    mailu.token = vps.mailu_api_token.reveal()
    run_jobs()
    vps.refresh_from_db()
    assert vps.status == VpsStatus.ACTIVE, vps.last_error
    waiting = vps.ips.get(status=IpStatus.AWAITING_ORDER)
    assert waiting.address is None

    # Nothing attached yet: the periodic job finds nothing and changes nothing.
    runner.run(enqueue(DISCOVER_TASK, {}).pk, worker_id="beat-test")
    waiting.refresh_from_db()
    assert waiting.status == IpStatus.AWAITING_ORDER

    address = hostwinds.attach_ip(vps.provider_id)
    runner.run(enqueue(DISCOVER_TASK, {}).pk, worker_id="beat-test")
    waiting.refresh_from_db()
    assert (waiting.address, waiting.status) == (address, IpStatus.ASSIGNED)
    assert waiting.ptr_set and hostwinds.instances[vps.provider_id].ptr[address] == vps.hostname
