"""The API's `remaining_today` per mailbox comes from deliverability's allowance (its limit less
what it sent today, capped by the plan's room), one allowance query for a page; the billing
page's "sent today" is the allowance's own count. The outsider sees none of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django_tenants.utils import schema_context

from billing.entitlements import default_plan
from billing.models import Plan, TenantPlan
from deliverability.models import Mailbox, MailboxKind, MailboxStatus
from deliverability.services import usage
from deliverability.services.allowance import allowance_for, today_of
from tests.api.conftest import assert_error, key_client
from tests.conftest import Cast, client_for


def _mailbox(n: int, *, limit: int, sent: int, on: Any = None, **kw: Any) -> Mailbox:
    return Mailbox.objects.create(
        address=f"box{n}@remaining.test", kind=MailboxKind.OTHER, smtp_host="127.0.0.1",
        smtp_port=2525, smtp_password="x", daily_limit=limit, sent_today=sent,
        sent_on=on or today_of(), status=kw.pop("status", MailboxStatus.ACTIVE), **kw,
    )  # fmt: skip


def _plan_with(cast: Cast, daily_sends: int) -> None:
    limits = dict(default_plan().limits, daily_sends=daily_sends)
    plan = Plan.objects.create(slug="remaining", name="Remaining", monthly_price=0, limits=limits)
    TenantPlan.objects.update_or_create(tenant=cast.tenant, defaults={"plan": plan})


def _by_address(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {r["address"]: (r["sent_today"], r["remaining_today"]) for r in rows}


def test_it_shows_what_each_mailbox_may_still_send_today(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        box = _mailbox(1, limit=50, sent=10)
        _mailbox(2, limit=50, sent=30, on=today_of() - timedelta(days=1))  # yesterday's count
        _mailbox(3, limit=50, sent=0, status=MailboxStatus.PAUSED)
    api = key_client(cast.tenant, creator=cast.owner).client
    listing = _by_address(api.get("/api/v1/mailboxes").json()["results"])
    assert listing == {
        "box1@remaining.test": (10, 40),
        "box2@remaining.test": (0, 50),
        "box3@remaining.test": (0, 0),  # not active: may send nothing
    }
    one = api.get(f"/api/v1/mailboxes/{box.pk}").json()
    assert (one["sent_today"], one["remaining_today"]) == (10, 40)
    patched = api.patch(f"/api/v1/mailboxes/{box.pk}", {"daily_limit": 15}, format="json")
    assert patched.json()["remaining_today"] == 5


def test_it_caps_the_room_by_the_plan_and_counts_the_billing_figure_alike(cast: Cast) -> None:
    _plan_with(cast, daily_sends=25)
    with schema_context(cast.tenant.schema_name):
        _mailbox(1, limit=50, sent=10)
        _mailbox(2, limit=50, sent=8)
        _mailbox(3, limit=50, sent=99, on=today_of() - timedelta(days=1))
        plan_sent = allowance_for(cast.tenant, []).plan_sent
    api = key_client(cast.tenant, creator=cast.owner).client
    listing = _by_address(api.get("/api/v1/mailboxes").json()["results"])
    # The plan's 25 less the 18 sent today by all of them is smaller than each one's own room.
    assert listing == {
        "box1@remaining.test": (10, 7),
        "box2@remaining.test": (8, 7),
        "box3@remaining.test": (0, 7),
    }
    assert usage.sends_today(cast.tenant) == plan_sent == 18
    page = client_for(cast.owner, cast.tenant).get("/billing/")
    assert {line.resource: line.in_use for line in page.context["usage"]}["daily_sends"] == 18


def test_it_shows_the_outsider_nothing(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        box = _mailbox(1, limit=50, sent=10)
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/mailboxes").json()["results"] == []
    assert_error(api.get(f"/api/v1/mailboxes/{box.pk}"), 404)
    # A key of acme's on globex's host is refused too.
    stray = key_client(cast.tenant, creator=cast.owner, host=cast.other_tenant).client
    assert stray.get("/api/v1/mailboxes").status_code in (401, 403, 404)
    assert usage.sends_today(cast.other_tenant) == 0
