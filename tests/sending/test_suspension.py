"""A suspended workspace sends nothing: its queued messages are held by the `tenant_active`
check (queued, not failed), the tick gives it no scheduler run and a run asked for anyway does
nothing; once reactivated, the same messages go out, each once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import CampaignLead, Message, MessageStatus
from campaigns.sending import scheduler
from campaigns.services import campaigns as svc
from penguinmails.models import CLAIMABLE_STATUSES, Job
from penguinmails.queue import runner
from tenants.services.tenancy import reactivate_tenant, suspend_tenant
from tests.conftest import Cast
from tests.sending.conftest import Sandbox, drain, make_campaign, principal, run_send_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def _run_schedule_jobs(cast: Cast) -> int:
    """Run the tenant's waiting `campaigns.schedule` jobs with the worker's runner."""
    connection.set_schema_to_public()
    jobs = list(
        Job.objects.filter(
            tenant=cast.tenant, task=scheduler.SCHEDULE_TASK, status__in=CLAIMABLE_STATUSES
        )
    )
    for job in jobs:
        runner.run(job.pk, worker_id="test")
    connection.set_schema_to_public()
    return len(jobs)


def test_it_holds_a_suspended_tenants_messages_and_sends_them_after_reactivation(
    cast: Cast, sandbox: Sandbox
) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=3, steps=1, mailboxes=1)
        svc.start_campaign(principal(cast), campaign)
        scheduler.schedule_tenant(cast.tenant, only_due=False)
        assert Message.objects.filter(status=MessageStatus.QUEUED).count() == 3
    connection.set_schema_to_public()
    _run_schedule_jobs(cast)  # the run `start` asked for: nothing more to schedule
    suspend_tenant(cast.tenant, reason="Unpaid invoice")

    # The send jobs dispatched before the suspension run: every message is held.
    assert run_send_jobs(cast.tenant) == 1
    assert sandbox.messages() == []
    with schema_context(cast.tenant.schema_name):
        held = list(Message.objects.all())
        assert {m.status for m in held} == {MessageStatus.QUEUED}
        assert {m.stopped_by for m in held} == {"tenant_active"}
        assert {m.stop_reason for m in held} == {"The workspace is suspended: Unpaid invoice"}
        assert {m.job_id for m in held} == {None} and {m.attempts for m in held} == {0}
        assert set(CampaignLead.objects.values_list("status", flat=True)) == {"active"}

    # Beat's tick gives the tenant no scheduler run; a run asked for by hand does nothing.
    later = timezone.now() + timedelta(minutes=1)
    assert scheduler.tick(now=later) == 0
    assert _run_schedule_jobs(cast) == 0
    with schema_context(cast.tenant.schema_name):
        report = scheduler.schedule_tenant(cast.tenant, only_due=False)
    assert [c.skipped for c in report.campaigns] == ["The workspace is suspended: Unpaid invoice"]
    assert run_send_jobs(cast.tenant) == 0
    assert sandbox.messages() == []

    reactivate_tenant(cast.tenant)
    assert scheduler.tick(now=later) == 1
    assert _run_schedule_jobs(cast) == 1
    drain(cast.tenant)  # the scheduler's next visits re-dispatch the held messages
    received = sandbox.messages()
    with schema_context(cast.tenant.schema_name):
        sent = list(Message.objects.all())
    assert {m.status for m in sent} == {MessageStatus.SENT}
    assert sorted(m["Message-ID"] for m in received) == sorted(m.message_id for m in sent)
    assert len(received) == 3
