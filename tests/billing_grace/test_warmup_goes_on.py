"""While the dunning ladder holds a tenant's sending, its warm-up goes on at maintenance level
(the ramp's volume beside a running campaign), not at the ramp's full day, and not stopped."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.services import dunning
from deliverability.services.allowance import today_of
from tests.conftest import Cast
from tests.sending.conftest import Sandbox
from tests.warmup.conftest import plan, pool_mailbox
from warmup.models import WarmupMessage

pytestmark = pytest.mark.django_db(transaction=True)


def planned(cast: Cast, sandbox: Sandbox, *, overdue: bool) -> int:
    day = today_of()
    ours, _ = pool_mailbox(cast.tenant, sandbox, "eva@epsilon.test", limit=50, start_volume=8,
                           target=40, maintenance_volume=3, started_on=day)  # fmt: skip
    pool_mailbox(cast.other_tenant, sandbox, "finn@zeta.test", start_volume=1)
    if overdue:
        dunning.start(cast.tenant, subscription=None, at=timezone.now())
        dunning.escalate(cast.tenant)  # day 7: sending paused
        assert dunning.sending_paused(cast.tenant.schema_name)
    plan(day)
    with schema_context(cast.tenant.schema_name):
        return WarmupMessage.objects.filter(mailbox=ours).count()


def test_warm_up_goes_on_at_maintenance_level_while_sending_is_paused(
    cast: Cast, sandbox: Sandbox
) -> None:
    weekend = today_of().weekday() >= 5
    assert planned(cast, sandbox, overdue=True) == (1 if weekend else 3)
    assert not dunning.sending_paused(cast.other_tenant.schema_name)


def test_the_control_without_dunning_ramps_at_the_full_day(cast: Cast, sandbox: Sandbox) -> None:
    weekend = today_of().weekday() >= 5
    assert planned(cast, sandbox, overdue=False) == (4 if weekend else 8)
