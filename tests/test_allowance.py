"""How much may a mailbox send now (deliverability.services.allowance), and the campaign's part
composed with it (campaigns.sending.pacing): the mailbox's limit, the plan's, the campaign's
daily cap counted from local midnight, the smallest wins, one query for any number of
mailboxes. Also the bulk writers the send pipeline uses instead of writing other tables itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from billing.entitlements import default_plan
from billing.models import Plan, TenantPlan
from campaigns.models import Campaign, Lead, Message, MessageStatus, SequenceStep, Suppression
from campaigns.models import SuppressionReason as Reason
from campaigns.sending import pacing
from campaigns.services.suppressions import suppress_many
from deliverability.models import Mailbox, MailboxKind, MailboxStatus
from deliverability.services.allowance import allowance_for
from deliverability.services.mailboxes import record_sends
from tests.conftest import Cast
from tests.sending.conftest import make_campaign

NOW = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)  # 22:00 on the 14th in New York
TODAY = NOW.date()


def mailbox(n: int, *, limit: int = 50, sent: int = 0, on: Any = TODAY, **kw: Any) -> Mailbox:
    return Mailbox.objects.create(
        address=f"box{n}@allow.test", kind=MailboxKind.OTHER, smtp_host="127.0.0.1",
        smtp_port=2525, smtp_password="x", daily_limit=limit, sent_today=sent, sent_on=on,
        status=kw.pop("status", MailboxStatus.ACTIVE), **kw,
    )  # fmt: skip


def plan_with(cast: Cast, daily_sends: int) -> None:
    limits = dict(default_plan().limits, daily_sends=daily_sends)
    plan = Plan.objects.create(slug="allow", name="Allow", monthly_price=0, limits=limits)
    TenantPlan.objects.update_or_create(tenant=cast.tenant, defaults={"plan": plan})


def test_it_counts_the_mailbox_limit_less_what_it_sent_today(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        busy, fresh = (
            mailbox(1, limit=5, sent=3),
            mailbox(2, limit=5, sent=4, on=TODAY - timedelta(1)),
        )
        paused = mailbox(3, limit=5, status=MailboxStatus.PAUSED)
        allowance = allowance_for(cast.tenant, [busy.pk, fresh.pk, paused.pk], now=NOW)
        assert allowance.left(busy.pk) == 2
        assert allowance.left(fresh.pk) == 5  # yesterday's count does not count
        assert allowance.room(paused.pk) == 0 and allowance.left(paused.pk) == 5
        assert allowance.room(12345) == 0  # not a mailbox of the tenant
        pending = allowance_for(cast.tenant, [busy.pk], now=NOW, pending={busy.pk: 2})
        assert pending.left(busy.pk) == 0


def test_it_shares_the_plan_limit_between_the_mailboxes(cast: Cast) -> None:
    plan_with(cast, daily_sends=10)
    with schema_context(cast.tenant.schema_name):
        a, b = mailbox(1, sent=6), mailbox(2, sent=3)
        allowance = allowance_for(cast.tenant, [a.pk, b.pk], now=NOW)
        assert (allowance.plan_limit, allowance.plan_sent, allowance.plan_left) == (10, 9, 1)
        assert allowance.left(b.pk) == 47  # its own limit
        assert allowance.room(b.pk) == 1  # the plan's room is smaller
        assert allowance.total == 1
        # Sends promised but not counted yet (queued messages) count against the plan too.
        assert allowance_for(cast.tenant, [a.pk], now=NOW, pending={0: 1}).plan_left == 0


def test_it_counts_the_campaign_cap_from_local_midnight(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = _campaign(cast, daily_cap=5, timezone="America/New_York")
        midnight = pacing.local_midnight(campaign, NOW)
        assert midnight == datetime(2025, 1, 14, 5, 0, tzinfo=UTC)
        _message(campaign, 0, created=midnight - timedelta(minutes=1))  # yesterday, locally
        _message(campaign, 1, created=midnight + timedelta(hours=1))
        _message(campaign, 2, created=NOW - timedelta(minutes=5))  # another UTC day, same local
        _message(campaign, 3, created=NOW, status=MessageStatus.SKIPPED)  # never used a mailbox
        assert pacing.cap_used_today(campaign, now=NOW) == 2
        assert pacing.campaign_room(campaign, now=NOW) == 3


@pytest.mark.parametrize(
    ("cap", "plan", "limit", "expected", "why"),
    [
        (3, 100, 50, 3, "daily cap"),
        (100, 4, 50, 4, "plan limit"),
        (100, 100, 2, 2 * 2, "mailboxes"),  # two mailboxes of 2
    ],
)
def test_the_smallest_room_wins(
    cast: Cast, cap: int, plan: int, limit: int, expected: int, why: str
) -> None:
    plan_with(cast, daily_sends=plan)
    with schema_context(cast.tenant.schema_name):
        campaign = _campaign(cast, daily_cap=cap, mailboxes=2)
        Mailbox.objects.update(daily_limit=limit)
        caps = pacing.capacity(cast.tenant, campaign, now=NOW, gap=lambda: timedelta(0))
        assert caps.limit == expected
        assert caps.reached(caps.limit) == why


def test_it_answers_for_many_mailboxes_in_one_query(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        ids = [mailbox(n).pk for n in range(12)]
        default_plan()  # the ladder's lookup is billing's, counted apart below
        counts = []
        for some in (ids[:1], ids):
            with CaptureQueriesContext(connection) as queries:
                allowance = allowance_for(cast.tenant, some, now=NOW)
            assert set(allowance.mailboxes) == set(some)
            mailbox_queries = [q for q in queries if "deliverability_mailbox" in q["sql"]]
            assert len(mailbox_queries) == 1
            counts.append(len(queries))
        assert counts[0] == counts[1]


# --- the bulk writers the pipeline calls -------------------------------------------------------
def test_record_sends_counts_a_chunk_per_mailbox_and_restarts_a_new_day(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        today, old = (
            mailbox(1, sent=3, consecutive_failures=2),
            mailbox(2, sent=9, on=TODAY - timedelta(1)),
        )
        assert record_sends({today.pk: 2, old.pk: 4, 0: 7}, at=NOW) == 2
        today.refresh_from_db()
        old.refresh_from_db()
        assert (today.sent_today, today.sent_on, today.consecutive_failures) == (5, TODAY, 0)
        assert (old.sent_today, old.sent_on, old.last_sent_at) == (4, TODAY, NOW)


def test_suppress_many_keeps_the_first_reason(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        Suppression.objects.create(value="known@x.test", reason=Reason.UNSUBSCRIBED)
        added = suppress_many(
            ["Known@x.test", "New@x.test", "new@x.test"], reason=Reason.BOUNCED, source="t", at=NOW
        )
        assert added == 1
        reasons = dict(Suppression.objects.values_list("value", "reason"))
        assert reasons == {"known@x.test": Reason.UNSUBSCRIBED, "new@x.test": Reason.BOUNCED}


def _campaign(cast: Cast, *, mailboxes: int = 1, **settings: Any) -> Campaign:
    stub: Any = SimpleNamespace(port=2525)
    return make_campaign(cast, stub, leads=4, steps=1, mailboxes=mailboxes, **settings)


def _message(
    campaign: Campaign, n: int, *, created: datetime, status: str = MessageStatus.SENT
) -> Message:
    step = SequenceStep.objects.get(campaign=campaign)
    lead = Lead.objects.order_by("pk")[n]
    message = Message.objects.create(
        campaign=campaign, step=step, variant=step.variants.get(), lead=lead,
        mailbox=campaign.mailboxes.first(), to_email=lead.email, status=status,
        scheduled_for=created, created_at=created,
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(created_at=created)  # not auto_now_add's
    return message
