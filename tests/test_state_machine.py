"""The one state-machine helper (penguinmails.states, docs/states.md): refusals, races, the
declared tables, the one transition log, history in the admin and the dashboard, and the
scheduled campaign that starts at its start time."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus, StepVariant
from campaigns.services import campaigns as svc
from campaigns.services.starts import start_due
from deliverability.models import DomainStatus, Mailbox, MailboxStatus, SendingDomain
from deliverability.services.mailboxes import transition_mailbox
from deliverability.services.states import transition as transition_domain
from infrastructure.models import VpsInstance, VpsStatus
from penguinmails import states
from penguinmails.errors import Conflict, IllegalTransition
from penguinmails.history.models import Transition
from penguinmails.models import RunningCampaign, ScheduledCampaign
from tenants.models import Invitation, InvitationStatus, Membership, Role, User
from tenants.services.access import principal_for_membership
from tenants.services.invitations import invite_member, revoke_invitation
from tests.campaigns.test_campaigns import _parts, _principal, _ready
from tests.conftest import PASSWORD, Cast, client_for

LIFECYCLES = {
    "infrastructure.vpsinstance",
    "infrastructure.ipaddress",
    "infrastructure.mailserver",
    "deliverability.sendingdomain",
    "deliverability.mailbox",
    "penguinmails.job",
    "campaigns.leadimport",
    "campaigns.campaign",
    "campaigns.campaignlead",
    "campaigns.message",
    "tenants.tenant",
    "tenants.invitation",
}


def _vps(cast: Cast, name: str = "acme-1") -> VpsInstance:
    return VpsInstance.objects.create(
        tenant=cast.tenant, provider="local", name=name, hostname=f"mail.{name}.test", size="s"
    )


def _log(obj: object) -> list[tuple[str, str, str, str]]:
    return [(t.from_status, t.to_status, t.reason, t.actor) for t in states.history(obj)]  # type: ignore[arg-type]


def test_it_declares_a_table_for_every_lifecycle_covering_every_status() -> None:
    machines = states.machines()
    assert LIFECYCLES <= set(machines)
    for label, machine in machines.items():
        values = set(machine.choices())
        assert set(machine.table) == values, f"{label}: every status is a row of its table"
        for source, targets in machine.table.items():
            assert set(targets) <= values, f"{label}: {source} moves to unknown statuses"
        for source, target in machine.quiet:
            assert machine.allows(source, target), f"{label}: quiet move {source}->{target}"


def test_it_refuses_an_illegal_move_and_changes_nothing(cast: Cast) -> None:
    vps = _vps(cast)
    with pytest.raises(IllegalTransition) as caught:
        states.transition(vps, VpsStatus.ACTIVE, reason="skip ahead")
    assert "requested to active" in caught.value.message
    assert VpsInstance.objects.get(pk=vps.pk).status == VpsStatus.REQUESTED
    assert vps.status == VpsStatus.REQUESTED and states.history(vps) == []
    with pytest.raises(IllegalTransition):
        states.transition(
            VpsInstance.objects.filter(pk=vps.pk), VpsStatus.ACTIVE, from_=["requested"]
        )
    assert Transition.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_lets_only_one_of_two_concurrent_movers_win(cast: Cast) -> None:
    vps = _vps(cast)
    barrier = threading.Barrier(2, timeout=10)
    outcomes: dict[str, str] = {}

    def mover(to: VpsStatus) -> None:
        # Each thread has its own connection (Django's are per thread): two real sessions.
        try:
            mine = VpsInstance.objects.get(pk=vps.pk)  # both read `requested`
            barrier.wait()
            states.transition(mine, to, reason=f"race to {to}")
            outcomes[to] = "won"
        except IllegalTransition as exc:
            outcomes[to] = exc.message
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=mover, args=(to,)) for to in (VpsStatus.CREATING, VpsStatus.FAILED)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == [VpsStatus.CREATING, VpsStatus.FAILED]
    winners = [to for to, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    (loser,) = set(outcomes) - set(winners)
    assert "changed status meanwhile" in outcomes[loser]
    assert VpsInstance.objects.get(pk=vps.pk).status == winners[0]
    assert [(f, t) for f, t, _, _ in _log(vps)] == [("requested", winners[0])]


def test_it_moves_a_queryset_only_from_the_given_statuses(cast: Cast) -> None:
    vps = _vps(cast)
    states.transition(vps, VpsStatus.CREATING, reason="one")
    rows = VpsInstance.objects.filter(pk=vps.pk)
    assert states.transition(rows, VpsStatus.WAITING_ACTIVE, from_=["creating"]) == 1
    assert states.transition(rows, VpsStatus.WAITING_ACTIVE, from_=["creating"]) == 0
    assert [(f, t) for f, t, _, _ in _log(vps)] == [
        ("requested", "creating"),
        ("creating", "waiting_active"),
    ]


def test_it_logs_an_invitations_moves(cast: Cast) -> None:
    owner = principal_for_membership(Membership.objects.get(tenant=cast.tenant, user=cast.owner))
    role = Role.objects.get(tenant=None, slug="member")
    first = invite_member(owner, email="again@example.com", role=role)
    Invitation.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(days=1))
    second = invite_member(owner, email="again@example.com", role=role)
    assert _log(first) == [
        ("pending", "revoked", "expired; replaced by a new invitation", cast.owner.email)
    ]
    revoke_invitation(owner, second)
    assert _log(second) == [("pending", "revoked", "revoked", cast.owner.email)]
    with pytest.raises(Conflict):
        revoke_invitation(owner, second)
    with pytest.raises(IllegalTransition):
        states.transition(second, InvitationStatus.ACCEPTED)


def test_it_logs_a_vps_move_with_its_job_as_actor(cast: Cast) -> None:
    vps = _vps(cast)
    states.transition(vps, VpsStatus.CREATING, reason="ordering the server", actor=42)
    assert _log(vps) == [("requested", "creating", "ordering the server", "job:42")]
    # A public object's log stays in public, even moved while a tenant's schema is active.
    with schema_context(cast.tenant.schema_name):
        states.transition(vps, VpsStatus.FAILED, reason="boom")
        assert not Transition.objects.filter(object_id=vps.pk, to_status="failed").exists()
        assert len(states.history(vps)) == 2


def test_it_logs_a_campaign_move_with_the_user_as_actor(cast: Cast) -> None:
    campaign = _ready(cast, _parts(cast))
    with schema_context(cast.tenant.schema_name):
        svc.transition_to(_principal(cast), campaign, "schedule", reason="for Monday")
        row = states.history(campaign)[0]
    assert (row.from_status, row.to_status, row.reason) == ("draft", "scheduled", "for Monday")
    assert (row.actor, row.actor_user_id) == (cast.owner.email, cast.owner.pk)
    assert (row.from_label, row.to_label) == ("Draft", "Scheduled")


def _message(cast: Cast, campaign: Campaign, status: str) -> Message:
    variant = StepVariant.objects.get(step__campaign=campaign)
    return Message.objects.create(
        campaign=campaign,
        step=variant.step,
        variant=variant,
        lead=campaign.lead_lists.get().leads.get(),
        to_email="ada@example.com",
        status=status,
        scheduled_for=timezone.now(),
    )


def test_it_logs_a_message_move_but_not_a_routine_one(cast: Cast) -> None:
    campaign = _ready(cast, _parts(cast))
    with schema_context(cast.tenant.schema_name):
        message = _message(cast, campaign, MessageStatus.QUEUED)
        rows = Message.objects.filter(pk=message.pk)
        assert states.transition(rows, MessageStatus.SENDING) == 1  # routine: not logged
        assert states.transition(rows, MessageStatus.FAILED, reason="550 no such user") == 1
        assert _log(message) == [("sending", "failed", "550 no such user", "system")]
        with pytest.raises(IllegalTransition):
            states.transition(rows, MessageStatus.QUEUED, from_=[MessageStatus.FAILED])


def test_it_keeps_the_domain_and_mailbox_moves_in_the_log(cast: Cast) -> None:
    parts = _parts(cast)
    with schema_context(cast.tenant.schema_name):
        domain = SendingDomain.objects.create(
            name="acme.test",
            tracking_host="track.acme.test",
            dkim_selector="pm",
            dkim_public_key="x",
            dkim_private_key="y",
            dmarc_rua="dmarc@acme.test",
        )
        transition_domain(domain, DomainStatus.VERIFIED, reason="all records right", job_id=7)
        assert domain.verified_at is not None
        mailbox = Mailbox.objects.get(pk=parts["mailbox"])
        transition_mailbox(mailbox, MailboxStatus.ACTIVE, reason="tested", actor=cast.owner)
        assert _log(domain) == [("pending", "verified", "all records right", "job:7")]
        assert _log(mailbox) == [("pending", "active", "tested", cast.owner.email)]


# --- history in the admin and the dashboard ------------------------------------------------------
def test_it_shows_history_in_the_admin(cast: Cast) -> None:
    vps = _vps(cast)
    states.transition(vps, VpsStatus.CREATING, reason="ordering the server", actor=42)
    staff = User.objects.create_superuser("staff@penguinmails.example.com", PASSWORD)
    page = client_for(staff, None).get(f"/admin/infrastructure/vpsinstance/{vps.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "ordering the server" in body and "job:42" in body and "Creating" in body


def test_it_shows_history_on_the_dashboard_and_hides_it_from_the_outsider(cast: Cast) -> None:
    parts = _parts(cast)
    campaign = _ready(cast, parts)
    with schema_context(cast.tenant.schema_name):
        svc.transition_to(_principal(cast), campaign, "schedule", reason="secret plan")
        mailbox = Mailbox.objects.get(pk=parts["mailbox"])
        transition_mailbox(mailbox, MailboxStatus.ACTIVE, reason="tested ok", actor=cast.owner)
    owner = client_for(cast.owner, cast.tenant)
    page = owner.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "data-history" in page and "secret plan" in page
    page = owner.get(f"/mailboxes/{mailbox.pk}/history/").content.decode()
    assert "data-history" in page and "tested ok" in page
    for client in (
        client_for(cast.outsider, cast.other_tenant),
        client_for(cast.outsider, cast.tenant),
    ):
        for path in (f"/campaigns/{campaign.pk}/", f"/mailboxes/{mailbox.pk}/history/"):
            response = client.get(path)
            assert response.status_code in (302, 403, 404), path
            text = response.content.decode()
            assert "secret plan" not in text and "tested ok" not in text


# --- a scheduled campaign starts at its start time -----------------------------------------------
def test_it_starts_a_scheduled_campaign_at_its_start_time(cast: Cast) -> None:
    campaign = _ready(cast, _parts(cast))
    start = timezone.now() + timedelta(minutes=1)
    with schema_context(cast.tenant.schema_name):
        Campaign.objects.filter(pk=campaign.pk).update(start_at=start)
        campaign.refresh_from_db()
        svc.transition_to(_principal(cast), campaign, "schedule")
    assert ScheduledCampaign.objects.filter(tenant=cast.tenant, campaign_id=campaign.pk).exists()
    assert start_due(now=start - timedelta(seconds=5)) == 0
    with schema_context(cast.tenant.schema_name):
        assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SCHEDULED
    assert start_due(now=start + timedelta(seconds=5)) == 1
    with schema_context(cast.tenant.schema_name):
        started = Campaign.objects.get(pk=campaign.pk)
        assert started.status == CampaignStatus.RUNNING
        assert started.enrollments.count() == 1
        last = states.history(started)[-1]
    assert (last.from_status, last.to_status, last.actor) == ("scheduled", "running", "system")
    assert not ScheduledCampaign.objects.filter(campaign_id=campaign.pk).exists()
    assert RunningCampaign.objects.filter(tenant=cast.tenant, campaign_id=campaign.pk).exists()
    assert start_due(now=start + timedelta(minutes=5)) == 0  # started once


def test_it_drops_an_unscheduled_campaign_from_the_start_index(cast: Cast) -> None:
    campaign = _ready(cast, _parts(cast))
    with schema_context(cast.tenant.schema_name):
        svc.transition_to(_principal(cast), campaign, "schedule")
        svc.transition_to(_principal(cast), campaign, "unschedule")
    assert not ScheduledCampaign.objects.filter(campaign_id=campaign.pk).exists()
    assert start_due(now=timezone.now() + timedelta(days=1)) == 0
