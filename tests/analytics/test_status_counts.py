"""The status counters behind a campaign's progress (issue 16): whatever writes messages and
enrollments (the scheduler and the send path, `states.transition` and `transition_each`, raw
SQL, bulk deletes, a campaign's deletion, enrollments stopping), the counters equal a live
GROUP BY; two writers at once lose nothing; compaction folds rows and keeps the totals."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import (
    Campaign,
    CampaignLead,
    CampaignStatusCount,
    EmailTemplate,
    EnrollmentStatus,
    Lead,
    Message,
    MessageStatus,
    SequenceStep,
    StepVariant,
)
from campaigns.sending import scheduler
from campaigns.services import campaigns as svc
from campaigns.services import stats
from campaigns.services.stats import counters
from penguinmails import states
from tests.analytics.conftest import World
from tests.conftest import Cast
from tests.domains.conftest import principal as principal_of
from tests.sending.conftest import (  # noqa: F401 - the fixture
    Sandbox,
    drain,
    make_campaign,
    principal,
    sandbox,
)

Counts = dict[str, dict[str, int]]


def _live(campaign_id: int) -> Counts:
    """What the counters must say, counted from the rows themselves."""
    found: Counts = {"message": {}, "enrollment": {}}
    for kind, model in (("message", Message), ("enrollment", CampaignLead)):
        rows = model.objects.filter(campaign_id=campaign_id).order_by().values_list("status")
        for status in {s for (s,) in rows}:
            found[kind][status] = model.objects.filter(
                campaign_id=campaign_id, status=status
            ).count()
    return found


def _counted(campaign_id: int) -> Counts:
    return {
        kind: {s: n for s, n in by_status.items() if n}
        for kind, by_status in counters.read(campaign_id).items()
    }


def _agree(campaign_id: int) -> Counts:
    live = _live(campaign_id)
    assert _counted(campaign_id) == live
    return live


@pytest.mark.django_db(transaction=True)
def test_it_counts_what_the_scheduler_and_the_send_path_write(
    cast: Cast,
    sandbox: Sandbox,  # noqa: F811 - the fixture imported above
) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=3, steps=2)
        svc.start_campaign(principal(cast), campaign)
        _agree(campaign.pk)
        scheduler.schedule_tenant(cast.tenant, only_due=False)
        assert _agree(campaign.pk)["message"] == {MessageStatus.QUEUED: 3}
    drain(cast.tenant)
    with schema_context(cast.tenant.schema_name):
        assert _agree(campaign.pk) == {
            "message": {MessageStatus.SENT: 6},
            "enrollment": {EnrollmentStatus.FINISHED: 3},
        }
        # Its messages deleted in bulk (their steps protect them from the campaign's cascade),
        # then the campaign, its enrollments going by the ORM's cascade.
        Message.objects.filter(campaign=campaign, step__order=2).delete()
        assert _agree(campaign.pk)["message"] == {MessageStatus.SENT: 3}
        Message.objects.filter(campaign=campaign).delete()
        Campaign.objects.filter(pk=campaign.pk).delete()
        assert _agree(campaign.pk) == {"message": {}, "enrollment": {}}
        assert CampaignStatusCount.objects.filter(campaign_id=campaign.pk).exists()
        counters.compact()
        assert not CampaignStatusCount.objects.filter(campaign_id=campaign.pk).exists()


@pytest.mark.django_db
def test_it_counts_transitions_raw_updates_and_deletes(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        cid = world.campaign.pk
        _agree(cid)
        queued = Message.objects.get(campaign=world.campaign, status=MessageStatus.QUEUED)
        states.transition(queued, MessageStatus.SENDING)
        assert _agree(cid)["message"][MessageStatus.SENDING] == 1
        sent = list(Message.objects.filter(campaign=world.campaign, status=MessageStatus.SENT))
        # transition_each: one UPDATE ... FROM (VALUES ...), each row with fields of its own.
        states.transition_each(
            [(m, {"smtp_code": 550 + i}) for i, m in enumerate(sent[:2])], MessageStatus.BOUNCED
        )
        assert _agree(cid)["message"][MessageStatus.BOUNCED] == 3
        # A queryset move, an UPDATE that changes no status, one that rewrites the same status.
        states.transition(Message.objects.filter(pk=queued.pk), MessageStatus.SENT)
        Message.objects.filter(campaign=world.campaign).update(open_count=7)
        Message.objects.filter(campaign=world.campaign).update(status=MessageStatus.FAILED)
        Message.objects.filter(pk=queued.pk).update(status=MessageStatus.FAILED)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE campaigns_message SET status = 'skipped' WHERE id = %s", [queued.pk]
            )
        assert _agree(cid)["message"] == {MessageStatus.FAILED: 6, MessageStatus.SKIPPED: 1}
        Message.objects.filter(pk__in=[m.pk for m in sent[:3]]).delete()
        assert _agree(cid)["message"] == {MessageStatus.FAILED: 3, MessageStatus.SKIPPED: 1}
        # Enrollments stopping, one by the state machine and the rest in one UPDATE.
        active = CampaignLead.objects.filter(campaign=world.campaign, status="active")
        states.transition(active.first(), EnrollmentStatus.STOPPED, stop_reason="replied")
        states.transition(active, EnrollmentStatus.STOPPED)
        assert _agree(cid)["enrollment"] == {EnrollmentStatus.STOPPED: 3, "finished": 1}
        # A message moved to another campaign leaves one count and joins the other's.
        other = svc.create_campaign(principal(cast), name="Other")
        Message.objects.filter(pk=queued.pk).update(campaign=other)
        assert _agree(cid)["message"] == {MessageStatus.FAILED: 3}
        assert _agree(other.pk)["message"] == {MessageStatus.SKIPPED: 1}
        # Enrollments added in bulk (what enrolment writes), then the campaign deleted.
        leads = Lead.objects.bulk_create(Lead(email=f"bulk{i}@example.com") for i in range(5))
        CampaignLead.objects.bulk_create(CampaignLead(campaign=other, lead=lead) for lead in leads)
        assert _agree(other.pk)["enrollment"] == {EnrollmentStatus.ACTIVE: 5}
        Campaign.objects.filter(pk=other.pk).delete()
        assert _agree(other.pk) == {"message": {}, "enrollment": {}}


@pytest.mark.django_db
def test_it_reads_progress_from_the_counters_and_compacts_them(cast: Cast, world: World) -> None:
    with schema_context(cast.tenant.schema_name):
        cid = world.campaign.pk
        for status in (MessageStatus.SENDING, MessageStatus.QUEUED) * 5:
            Message.objects.filter(campaign=world.campaign, step=world.step2).update(status=status)
        before = _agree(cid)
        rows = CampaignStatusCount.objects.filter(campaign_id=cid).count()
        taken, written = counters.compact()
        assert 0 < written < taken <= rows
        assert _agree(cid) == before
        assert CampaignStatusCount.objects.filter(campaign_id=cid).count() == sum(
            len(by_status) for by_status in before.values()
        )
        assert counters.compact() == (0, 0)  # nothing left to fold
        progress = stats.progress(principal_of(cast.tenant, cast.member), world.campaign)
        assert progress.messages[MessageStatus.QUEUED] == 3 and progress.in_flight == 3
        assert progress.messages[MessageStatus.UNKNOWN] == 0
        assert progress.enrollments == {"active": 2, "finished": 1, "stopped": 1}


@pytest.mark.django_db(transaction=True)
def test_two_writers_at_once_lose_no_count(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = svc.create_campaign(principal(cast), name="Busy")
        step = SequenceStep.objects.create(campaign=campaign, order=1)
        template = EmailTemplate.objects.create(name="T", subject="Hi", html_body="<p>Hi</p>")
        variant = StepVariant.objects.create(step=step, template=template)
        leads = Lead.objects.bulk_create(Lead(email=f"w{i}@example.com") for i in range(400))
    errors: list[BaseException] = []
    now = timezone.now()
    barrier = threading.Barrier(2)

    def writer(part: list[Lead], compact_too: bool) -> None:
        try:
            with schema_context(cast.tenant.schema_name):
                barrier.wait()
                for i in range(0, len(part), 20):
                    chunk = Message.objects.bulk_create(
                        Message(
                            campaign=campaign, step=step, variant=variant, lead=lead,
                            to_email=lead.email, scheduled_for=now,
                        )
                        for lead in part[i : i + 20]
                    )  # fmt: skip
                    Message.objects.filter(pk__in=[m.pk for m in chunk[:10]]).update(
                        status=MessageStatus.SENT
                    )
                    if compact_too:
                        counters.compact()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=writer, args=(leads[:200], False)),
        threading.Thread(target=writer, args=(leads[200:], True)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with schema_context(cast.tenant.schema_name):
        assert _agree(campaign.pk)["message"] == {
            MessageStatus.SENT: 200,
            MessageStatus.QUEUED: 200,
        }
        counters.compact()
        assert CampaignStatusCount.objects.filter(campaign_id=campaign.pk).count() == 2
        assert _agree(campaign.pk)["message"][MessageStatus.SENT] == 200


@pytest.mark.django_db
def test_every_tenant_schema_has_the_triggers_and_their_function(cast: Cast) -> None:
    # Tenants are copies of the template (lean cloning): the triggers must be copied too.
    with connection.cursor() as cursor:
        for schema in (cast.tenant.schema_name, cast.other_tenant.schema_name):
            cursor.execute(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal",
                [schema],
            )
            assert cursor.fetchone()[0] == 8
            # Its own copy of the function: a tenant's backup restores anywhere.
            cursor.execute(
                "SELECT count(*) FROM pg_proc WHERE pronamespace = %s::regnamespace", [schema]
            )
            assert cursor.fetchone()[0] == 1
