"""Volume control (issue 13 item 4): campaign plus warm-up sends never pass the mailbox's daily
limit, the campaign allowance grows with warm-up age, and the tenant sees why, on the mailboxes
page and in the API; the outsider sees none of it. Plus the pool kept in step with mailbox moves
and the `warmup` command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import Mailbox, MailboxKind, MailboxStatus
from deliverability.services.allowance import allowance_for, today_of
from deliverability.services.mailboxes import record_sends
from deliverability.services.mailboxes.lifecycle import transition_mailbox
from penguinmails.models import WarmupPoolMember
from tests.api.conftest import key_client
from tests.conftest import Cast, client_for
from tests.sending.conftest import Sandbox
from tests.warmup.conftest import plan, pool_mailbox, run_jobs
from warmup.models import WarmupMessage, WarmupPlan
from warmup.services import sender

pytestmark = pytest.mark.django_db(transaction=True)


def _age(cast: Cast, mailbox: Mailbox, days: int) -> None:
    with schema_context(cast.tenant.schema_name):
        started = timezone.now().date() - timedelta(days=days - 1)
        WarmupPlan.objects.filter(mailbox=mailbox).update(started_on=started)


def test_campaign_plus_warm_up_never_pass_the_daily_limit(cast: Cast, sandbox: Sandbox) -> None:
    day = today_of()
    ours, _ = pool_mailbox(cast.tenant, sandbox, "eva@epsilon.test", limit=12, start_volume=8,
                           target=40, started_on=day)  # fmt: skip
    pool_mailbox(cast.other_tenant, sandbox, "finn@zeta.test", start_volume=1)
    plan(day)
    with schema_context(cast.tenant.schema_name):
        planned = WarmupMessage.objects.filter(mailbox=ours).count()
        assert planned == (8 if day.weekday() < 5 else 4)
        WarmupMessage.objects.update(scheduled_at=timezone.now() - timedelta(minutes=1))
        room = allowance_for(cast.tenant, [ours.pk]).room(ours.pk)
        # Campaigns get the limit less the planned warm-up, and no more than day 1's age cap.
        assert room == min(12 - planned, 8)
        record_sends({ours.pk: room}, at=timezone.now())  # the campaign sends all it may
        assert allowance_for(cast.tenant, [ours.pk]).room(ours.pk) == 0
    connection.set_schema_to_public()
    sender.enqueue_due()
    run_jobs(sender.SEND_TASK)
    with schema_context(cast.tenant.schema_name):
        counted = Mailbox.objects.get(pk=ours.pk).sent_today
        statuses = list(WarmupMessage.objects.filter(mailbox=ours).values_list("status", "error"))
    assert counted <= 12
    assert counted == room + sum(1 for s, _ in statuses if s == "sent")
    # A counter already at the limit cancels the rest instead of passing it.
    canceled = [e for s, e in statuses if s == "canceled"]
    assert all(e == "daily limit reached" for e in canceled)


def test_the_allowance_grows_with_age_and_says_why(cast: Cast, sandbox: Sandbox) -> None:
    ours, _ = pool_mailbox(cast.tenant, sandbox, "gil@eta.test", limit=40)
    rooms = []
    for age in (1, 6, 12, 19, 25):
        _age(cast, ours, age)
        with schema_context(cast.tenant.schema_name):
            rooms.append(allowance_for(cast.tenant, [ours.pk]).mailboxes[ours.pk])
    assert [r.left for r in rooms] == [2, 12, 24, 38, 40]
    assert rooms[1].explanation == "12 of 40 today: day 6 of warm-up"
    assert rooms[4].explanation == "40 of 40 today: warm-up at maintenance level"
    _age(cast, ours, 6)
    api = key_client(cast.tenant, creator=cast.owner).client
    one = api.get(f"/api/v1/mailboxes/{ours.pk}").json()
    assert (one["remaining_today"], one["allowance_explanation"]) == (
        12, "12 of 40 today: day 6 of warm-up"
    )  # fmt: skip
    page = client_for(cast.owner, cast.tenant).get("/mailboxes/").content.decode()
    assert "12 of 40 today: day 6 of warm-up" in page


def test_a_tenant_sees_nothing_of_another_tenants_pool_mailboxes(
    cast: Cast, sandbox: Sandbox
) -> None:
    ours, _ = pool_mailbox(cast.tenant, sandbox, "hana@theta.test")
    theirs, _ = pool_mailbox(cast.other_tenant, sandbox, "ivo@iota.test")
    plan()
    outsider_api = key_client(cast.other_tenant, creator=cast.outsider).client
    # Ids are per schema: the outsider's id may exist in globex, but never shows acme's mailbox.
    one = outsider_api.get(f"/api/v1/mailboxes/{ours.pk}")
    assert one.status_code in (200, 404) and "hana@theta.test" not in one.content.decode()
    assert outsider_api.get("/api/v1/mailboxes/987654").status_code == 404
    listing = outsider_api.get("/api/v1/mailboxes").content.decode()
    assert "hana@theta.test" not in listing and "ivo@iota.test" in listing
    page = client_for(cast.outsider, cast.other_tenant).get("/mailboxes/").content.decode()
    assert "hana@theta.test" not in page
    mine = client_for(cast.owner, cast.tenant).get("/mailboxes/").content.decode()
    assert "ivo@iota.test" not in mine
    out = StringIO()
    call_command("warmup", "status", "--tenant", "globex", stdout=out)
    assert "ivo@iota.test" in out.getvalue() and "hana@theta.test" not in out.getvalue()


def test_the_pool_follows_mailbox_moves_and_the_command(cast: Cast, sandbox: Sandbox) -> None:
    with schema_context(cast.tenant.schema_name):
        hosted = Mailbox.objects.create(
            address="jo@kappa.test", kind=MailboxKind.HOSTED, smtp_host="127.0.0.1",
            smtp_port=sandbox.port, smtp_password="x", daily_limit=50,
        )  # fmt: skip
        connected = Mailbox.objects.create(
            address="kim@kappa.test", kind=MailboxKind.OTHER, smtp_host="127.0.0.1",
            smtp_port=sandbox.port, smtp_password="x", daily_limit=50,
        )  # fmt: skip
        transition_mailbox(hosted, MailboxStatus.ACTIVE)
        transition_mailbox(connected, MailboxStatus.ACTIVE)
    members = WarmupPoolMember.objects.filter(tenant=cast.tenant)
    assert list(members.values_list("address", "active")) == [("jo@kappa.test", True)]
    with schema_context(cast.tenant.schema_name):
        transition_mailbox(hosted, MailboxStatus.PAUSED, reason="by hand")
    assert not members.get().active  # a paused mailbox leaves the active pool
    with schema_context(cast.tenant.schema_name):
        transition_mailbox(hosted, MailboxStatus.ACTIVE)
    assert members.get().active
    call_command("warmup", "pause", "--tenant", "acme", "jo@kappa.test", stdout=StringIO())
    assert not members.get().active
    with pytest.raises(CommandError, match="already paused"):
        call_command("warmup", "pause", "--tenant", "acme", "jo@kappa.test")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("warmup", "resume", "--tenant", "nope", "jo@kappa.test")
    with pytest.raises(CommandError, match="No mailbox"):
        call_command("warmup", "resume", "--tenant", "globex", "jo@kappa.test")
    with pytest.raises(CommandError, match="not in the warm-up pool"):
        call_command("warmup", "pause", "--tenant", "acme", "kim@kappa.test")
    call_command("warmup", "resume", "--tenant", "acme", "jo@kappa.test", stdout=StringIO())
    assert members.get().active
    call_command("warmup", "join", "--tenant", "acme", "kim@kappa.test", stdout=StringIO())
    assert members.count() == 2
    call_command("warmup", "leave", "--tenant", "acme", "kim@kappa.test", stdout=StringIO())
    assert list(members.values_list("address", flat=True)) == ["jo@kappa.test"]
