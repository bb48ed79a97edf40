"""Campaign statistics from the rollups: totals, unique opens, machine opens and clicks apart,
rates and their bases, per step and variant, the days window, progress, the overview, and the
rebuild from messages and events agreeing with what the writers bumped."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from campaigns.models import CampaignDailyStat, Message
from campaigns.services import stats
from penguinmails.errors import ValidationFailed
from tests.analytics.conftest import World
from tests.conftest import Cast
from tests.domains.conftest import principal

pytestmark = pytest.mark.django_db


def _rollups() -> list[tuple]:
    return sorted(
        CampaignDailyStat.objects.values_list("step_id", "variant_id", "day", *stats.COUNTERS)
    )


def test_it_adds_up_the_rollups_with_rates_and_machine_activity_apart(
    cast: Cast, world: World
) -> None:
    with schema_context(cast.tenant.schema_name):
        result = stats.campaign_stats(principal(cast.tenant, cast.viewer), world.campaign)
    t = result.totals
    assert (t.sent, t.delivered, t.bounced, t.failed) == (4, 4, 1, 1)
    assert (t.opened, t.clicked, t.replied, t.unsubscribed) == (2, 1, 1, 1)
    assert (t.machine_opened, t.machine_clicked) == (1, 1)
    assert t.rates == {
        "delivery_rate": 0.8,
        "open_rate": 0.5,
        "click_rate": 0.25,
        "reply_rate": 0.25,
        "bounce_rate": 0.2,
        "unsubscribe_rate": 0.25,
        "complaint_rate": 0.0,  # no complaint in this world; 0 of 4 delivered
    }
    step1, step2 = result.steps
    assert (step1.order, step2.order) == (1, 2)
    a, b = step1.variants
    assert (a.template_name, b.template_name) == ("Intro", "Intro B")
    assert (a.figures.sent, a.figures.opened, a.figures.machine_opened) == (2, 1, 1)
    assert a.figures.rates["open_rate"] == 0.5 and a.figures.rates["reply_rate"] == 0.5
    assert (b.figures.sent, b.figures.delivered, b.figures.bounced) == (1, 1, 1)
    assert b.figures.rates["bounce_rate"] == 0.5 and b.figures.machine_clicked == 1
    assert step1.figures.sent == 3 and step2.figures.sent == 1 and step2.figures.failed == 1
    assert step2.variants[0].figures.rates["open_rate"] == 0.0
    # A gapless daily series from the first day with numbers to today.
    assert result.series[0].day == world.ten_days_ago and result.series[-1].day == world.today
    assert len(result.series) == 11
    assert [d.figures.sent for d in result.series] == [3] + [0] * 9 + [1]
    assert result.series[1].figures.clicked == 1


def test_it_limits_the_numbers_to_the_last_days(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        result = stats.campaign_stats(principal(cast.tenant, cast.owner), world.campaign, days=1)
        week = stats.campaign_stats(principal(cast.tenant, cast.owner), world.campaign, days=7)
    t = result.totals
    assert (t.sent, t.delivered, t.opened, t.machine_clicked, t.unsubscribed) == (1, 1, 1, 1, 1)
    assert t.rates["open_rate"] == 1.0 and t.machine_opened == 0
    assert [d.day for d in result.series] == [world.today]
    assert len(week.series) == 7 and week.totals.sent == 1
    assert week.since == world.today - dt.timedelta(days=6) and result.since == world.today
    # No base, no rate: a step with nothing sent in the window says so instead of 0 %.
    step1 = result.steps[0]
    assert step1.figures.sent == 0 and step1.figures.rates["delivery_rate"] is None


def test_it_refuses_a_bad_window_and_a_principal_without_access(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        owner = principal(cast.tenant, cast.owner)
        for days in (0, 367, -3):
            with pytest.raises(ValidationFailed) as caught:
                stats.campaign_stats(owner, world.campaign, days=days)
            assert "days" in caught.value.fields
    with schema_context(cast.other_tenant.schema_name), pytest.raises(RuntimeError):
        # Another tenant's principal in this schema is a wiring error, never a silent read.
        stats.overview(principal(cast.tenant, cast.owner))


def test_it_counts_progress_by_message_and_enrollment_status(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        now = stats.progress(principal(cast.tenant, cast.member), world.campaign)
    assert now.messages["sent"] == 4 and now.messages["queued"] == 1
    assert now.messages["bounced"] == 1 and now.messages["failed"] == 1
    assert now.messages["sending"] == 0 and set(now.messages) >= {"skipped", "unknown"}
    assert now.enrollments == {"active": 2, "finished": 1, "stopped": 1}
    assert (now.enrolled, now.done, now.percent, now.in_flight) == (4, 2, 50, 1)


def test_it_gives_an_overview_of_every_campaign(cast: Cast, world: World) -> None:
    from campaigns.services import campaigns as svc

    with schema_context(cast.tenant.schema_name):
        owner = principal(cast.tenant, cast.owner)
        svc.create_campaign(owner, name="Quiet")
        result = stats.overview(owner)
        today = stats.overview(owner, days=1)
    rows = {row.name: row for row in result.campaigns}
    assert rows["Spring"].figures.sent == 4 and rows["Quiet"].figures == stats.Figures()
    assert result.totals.sent == 4 and result.totals.rates["open_rate"] == 0.5
    assert len(result.series) == 11 and today.totals.sent == 1


def test_it_rebuilds_the_same_rollups_from_messages_and_events(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        bumped = _rollups()
        assert len(bumped) == 5
        assert sorted(stats.raw_rollups(world.campaign.pk)) == bumped
        CampaignDailyStat.objects.update(sent=99, opened=0)
        assert stats.rebuild(world.campaign) == 5
        assert _rollups() == bumped
        # A message counted twice by a buggy writer is repaired by the command too.
        CampaignDailyStat.objects.filter(variant=world.c).update(delivered=2)
        call_command("stats", "rebuild", "--tenant", "acme", "--campaign", str(world.campaign.pk))
        assert _rollups() == bumped
        Message.objects.filter(step=world.step2).delete()
        call_command("stats", "rebuild", "--tenant", "acme")
        assert sum(row[3] for row in _rollups()) == 3


def test_it_refuses_bad_rebuild_arguments(cast: Cast, world: World) -> None:
    with pytest.raises(CommandError, match="No tenant"):
        call_command("stats", "rebuild", "--tenant", "nope")
    with pytest.raises(CommandError, match="No campaign 999999"):
        call_command("stats", "rebuild", "--tenant", "acme", "--campaign", "999999")


def test_it_reads_a_fixed_number_of_queries_whatever_the_size(
    cast: Cast, world: World, django_assert_num_queries: Any
) -> None:
    with schema_context(cast.tenant.schema_name):
        owner = principal(cast.tenant, cast.owner)
        with django_assert_num_queries(3):  # by variant, by day, the variants' names
            stats.campaign_stats(owner, world.campaign, days=30)
        with django_assert_num_queries(3):  # by campaign, by day, the campaigns' names
            stats.overview(owner)
        with django_assert_num_queries(1):  # the status counters of messages and enrollments
            stats.progress(owner, world.campaign)
