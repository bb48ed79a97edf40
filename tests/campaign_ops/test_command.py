"""`manage.py campaigns ...`: list, status, status moves through the service, a scheduler tick,
resending an unknown message; errors through call_command and exit codes from a real process."""

from __future__ import annotations

import json
import subprocess

import pytest
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from campaigns.models import (
    CampaignStatus,
    EnrollmentStatus,
    Message,
    MessageStatus,
)
from penguinmails import states
from penguinmails.models import Job
from tenants.models import AuditEvent
from tests.campaign_ops.conftest import World, messages_of, run
from tests.conftest import Cast
from tests.ops.conftest import MANAGE, PYTHON, ROOT, subprocess_env
from tests.ops.conftest import the_test_database_url as database_url
from tests.sending.conftest import Sandbox, make_campaign, run_send_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def _status(cast: Cast, campaign_id: int) -> str:
    with schema_context(cast.tenant.schema_name):
        from campaigns.models import Campaign

        return Campaign.objects.get(pk=campaign_id).status


# --- list and status -----------------------------------------------------------------------------
def test_it_lists_campaigns_with_sent_and_queued_counts(cast: Cast, world: World) -> None:
    rows = {r["name"]: r for r in json.loads(run("list", "--tenant", "acme", "--json"))}
    assert rows["Launch"] == {
        "id": world.launch.pk,
        "name": "Launch",
        "status": "running",
        "sent": 3,
        "queued": 3,
    }
    assert rows["Idle"] == {
        "id": world.idle.pk,
        "name": "Idle",
        "status": "draft",
        "sent": 0,
        "queued": 0,
    }
    table = run("list", "--tenant", "acme").splitlines()
    assert table[0].split() == ["ID", "NAME", "STATUS", "SENT", "QUEUED"]
    assert [line.split()[1:] for line in table[1:]] == [
        ["Launch", "running", "3", "3"],
        ["Idle", "draft", "0", "0"],
    ]
    assert run("list", "--tenant", "globex") == "No campaigns in globex.\n"


def test_it_shows_one_campaigns_status(cast: Cast, world: World) -> None:
    report = json.loads(run("status", str(world.launch.pk), "--tenant", "acme", "--json"))
    assert report["status"] == "running"
    assert report["enrollments"] == {"active": 3, "finished": 0, "stopped": 0}
    assert report["messages"]["sent"] == 3 and report["messages"]["queued"] == 3
    assert report["messages"]["unknown"] == 0 and set(report["messages"]) == set(
        MessageStatus.values
    )
    assert report["today"] == {"sent": 3, "counted": 6, "daily_cap": 10_000}
    assert [(t["from"], t["to"]) for t in report["transitions"]] == [("draft", "running")]
    assert report["transitions"][0]["actor"] == cast.owner.email

    text = run("status", str(world.launch.pk), "--tenant", "acme")
    assert f"Campaign {world.launch.pk}: Launch (running)" in text
    assert "Enrollments: 3 active, 0 finished, 0 stopped" in text
    assert "3 queued" in text and "3 sent" in text
    assert "3 sent; 6 of the daily cap of 10000 used" in text
    assert f"draft → running by {cast.owner.email}" in text


# --- status moves --------------------------------------------------------------------------------
def test_it_moves_a_campaign_through_the_state_machine(cast: Cast, world: World) -> None:
    cid = str(world.launch.pk)
    assert run("pause", cid, "--tenant", "acme", "--reason", "customer asked") == (
        f"Campaign {cid} (Launch): running → paused.\n"
    )
    assert run("resume", cid, "--tenant", "acme").endswith("paused → running.\n")
    run("pause", cid, "--tenant", "acme")
    run("archive", cid, "--tenant", "acme")
    assert _status(cast, world.launch.pk) == CampaignStatus.ARCHIVED
    with schema_context(cast.tenant.schema_name):
        log = [
            (t.to_status, "" if t.actor == states.SYSTEM else t.actor, t.reason)
            for t in states.history(world.launch)
        ]
    assert log[1:] == [
        ("paused", "", "customer asked"),
        ("running", "", "manage.py campaigns"),
        ("paused", "", "manage.py campaigns"),
        ("archived", "", "manage.py campaigns"),
    ]
    assert AuditEvent.objects.filter(
        tenant=cast.tenant, action="campaign.archive", actor=None
    ).exists()

    with pytest.raises(CommandError, match=r"^An archived campaign cannot resume\.$"):
        run("resume", cid, "--tenant", "acme")
    with pytest.raises(CommandError, match=r"A draft campaign cannot complete\."):
        run("complete", str(world.idle.pk), "--tenant", "acme")
    assert _status(cast, world.idle.pk) == CampaignStatus.DRAFT


def test_it_starts_a_draft_and_names_what_an_incomplete_one_lacks(cast: Cast, world: World) -> None:
    run("start", str(world.idle.pk), "--tenant", "acme")
    assert _status(cast, world.idle.pk) == CampaignStatus.RUNNING
    with schema_context(cast.tenant.schema_name):
        from campaigns.models import Campaign

        empty = Campaign.objects.create(name="Empty")
    with pytest.raises(CommandError) as refused:
        run("start", str(empty.pk), "--tenant", "acme")
    assert "The campaign cannot start: Add at least one step." in str(refused.value)
    assert "  mailbox_ids: Pick at least one mailbox to send from." in str(refused.value)


def test_it_refuses_unknown_tenants_and_campaigns(cast: Cast, world: World) -> None:
    with pytest.raises(CommandError, match=r"^No tenant with slug 'nope'\.$"):
        run("list", "--tenant", "nope")
    with pytest.raises(CommandError, match=r"No tenant with slug '_template'"):
        run("list", "--tenant", "_template")
    for args in (
        ("status", "999999"),
        ("status", "abc"),
        ("pause", "999999"),
        ("resend", "999999", "--message", "1"),
    ):
        with pytest.raises(CommandError, match=r"No campaign with id '.+' in tenant acme\."):
            run(*args, "--tenant", "acme")
    # Acme's campaign does not exist in globex's schema.
    with pytest.raises(CommandError, match="in tenant globex"):
        run("pause", str(world.launch.pk), "--tenant", "globex")
    assert _status(cast, world.launch.pk) == CampaignStatus.RUNNING


# --- tick ----------------------------------------------------------------------------------------
def test_it_runs_the_scheduler_for_the_tenant_now(cast: Cast, sandbox: Sandbox) -> None:
    assert run("tick", "--tenant", "acme") == "No running campaigns in acme: nothing to schedule.\n"
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=4, steps=1, name="Tick")
    run("start", str(campaign.pk), "--tenant", "acme")
    before = Job.objects.filter(tenant=cast.tenant, task="campaigns.send").count()
    output = run("tick", "--tenant", "acme")
    assert f"Campaign {campaign.pk} (Tick): 0 enrolled, 4 scheduled," in output
    assert "4 dispatched in 1 send job(s)" in output
    assert "Scheduled 4 message(s), dispatched 4; the workers send them." in output
    assert Job.objects.filter(tenant=cast.tenant, task="campaigns.send").count() == before + 1
    assert {m.status for m in messages_of(cast, campaign)} == {MessageStatus.QUEUED}

    # Nothing new to schedule; the messages already have a live job, so none is dispatched twice.
    again = json.loads(run("tick", "--tenant", "acme", "--json"))
    assert again["tenant"] == "acme"
    (row,) = again["campaigns"]
    assert (row["scheduled"], row["dispatched"], row["jobs"], row["completed"]) == (0, 0, 0, False)
    assert row["next_run_at"] is not None

    assert run_send_jobs(cast.tenant) == 1
    assert len(sandbox.messages()) == 4
    final = json.loads(run("tick", "--tenant", "acme", "--json"))["campaigns"][0]
    assert final["completed"] is True
    assert _status(cast, campaign.pk) == CampaignStatus.COMPLETED


# --- resend --------------------------------------------------------------------------------------
def test_it_resends_an_unknown_message_with_its_message_id(cast: Cast, world: World) -> None:
    first = messages_of(cast, world.launch)[0]
    assert first.status == MessageStatus.SENT and first.message_id
    with schema_context(cast.tenant.schema_name):
        # As the pipeline leaves it when the connection dies after DATA.
        Message.objects.filter(pk=first.pk).update(status=MessageStatus.UNKNOWN)
    output = run("resend", str(world.launch.pk), "--tenant", "acme", "--message", str(first.pk))
    assert f"Message {first.pk} to {first.to_email} re-queued with Message-ID" in output
    assert first.message_id in output
    with schema_context(cast.tenant.schema_name):
        queued = Message.objects.get(pk=first.pk)
    assert queued.status == MessageStatus.QUEUED and queued.message_id == first.message_id
    assert queued.stop_reason == "resent by an operator" and queued.job_id is None
    assert AuditEvent.objects.filter(
        tenant=cast.tenant, action="message.resent", detail__message_id=first.pk
    ).exists()

    run("tick", "--tenant", "acme")
    run_send_jobs(cast.tenant)
    resent = messages_of(cast, world.launch)
    assert next(m for m in resent if m.pk == first.pk).status == MessageStatus.SENT
    copies = [m for m in world.sandbox.messages() if m["Message-ID"] == first.message_id]
    assert len(copies) == 2  # the receiver may drop the repeat by its Message-ID


def test_it_refuses_to_resend_anything_but_an_unknown_message(cast: Cast, world: World) -> None:
    sent, *_ = messages_of(cast, world.launch)
    cid = str(world.launch.pk)
    with pytest.raises(CommandError, match=rf"Message {sent.pk} is sent; only an unknown"):
        run("resend", cid, "--tenant", "acme", "--message", str(sent.pk))
    with pytest.raises(CommandError, match=rf"No message with id '{sent.pk}' in campaign"):
        run("resend", str(world.idle.pk), "--tenant", "acme", "--message", str(sent.pk))
    with pytest.raises(CommandError, match=r"No message with id 'x1' in campaign"):
        run("resend", cid, "--tenant", "acme", "--message", "x1")
    with schema_context(cast.tenant.schema_name):
        Message.objects.filter(pk=sent.pk).update(status=MessageStatus.UNKNOWN)
    run("pause", cid, "--tenant", "acme")
    run("complete", cid, "--tenant", "acme")
    with pytest.raises(CommandError, match=r"is completed; a message is resent only while"):
        run("resend", cid, "--tenant", "acme", "--message", str(sent.pk))
    assert messages_of(cast, world.launch)[0].status == MessageStatus.UNKNOWN


def test_it_resends_in_a_paused_campaign_when_it_resumes(cast: Cast, world: World) -> None:
    target = messages_of(cast, world.launch)[1]
    with schema_context(cast.tenant.schema_name):
        Message.objects.filter(pk=target.pk).update(status=MessageStatus.UNKNOWN)
    cid = str(world.launch.pk)
    run("pause", cid, "--tenant", "acme")
    output = run("resend", cid, "--tenant", "acme", "--message", str(target.pk))
    assert "it goes out when the campaign is resumed." in output
    with schema_context(cast.tenant.schema_name):
        assert Message.objects.get(pk=target.pk).status == MessageStatus.QUEUED
        enrollments = set(
            world.launch.enrollments.values_list("status", flat=True)  # untouched by a resend
        )
    assert enrollments == {EnrollmentStatus.ACTIVE}


# --- a real process ------------------------------------------------------------------------------
def test_it_exits_non_zero_with_the_reason_from_the_command_line(cast: Cast, world: World) -> None:
    env = subprocess_env(DATABASE_URL=database_url())

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, MANAGE, "campaigns", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    listed = manage("list", "--tenant", "acme", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["name"] for r in json.loads(listed.stdout)} == {"Launch", "Idle"}

    illegal = manage("resume", str(world.idle.pk), "--tenant", "acme")
    assert illegal.returncode == 1
    assert "A draft campaign cannot resume." in illegal.stderr

    unknown = manage("status", "1", "--tenant", "no-such-tenant")
    assert unknown.returncode == 1
    assert "No tenant with slug 'no-such-tenant'." in unknown.stderr

    missing = manage("status", "1")
    assert missing.returncode == 2
    assert "the following arguments are required: --tenant" in missing.stderr
    assert _status(cast, world.idle.pk) == CampaignStatus.DRAFT
