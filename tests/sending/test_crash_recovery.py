"""A worker killed mid-send: messages whose DATA never started go back to the queue (same
Message-ID, enrollment not advanced) and are sent exactly once later, by the job's re-run or by
the scheduler once the job is dead; those whose DATA started stay unknown, never resent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from campaigns.models import CampaignLead, Message, MessageStatus
from campaigns.sending import scheduler
from campaigns.services import campaigns as svc
from penguinmails.models import Job, JobStatus
from penguinmails.queue import runner
from penguinmails.queue.reaper import reap_expired
from tests.conftest import Cast
from tests.queue.conftest import ROOT, _test_database_url
from tests.sending.conftest import Sandbox, drain, make_campaign, principal, run_send_jobs

pytestmark = pytest.mark.django_db(transaction=True)

LEADS = 6
KILL_AT_MAIL = 3  # the worker dies while the server holds its reply to the third MAIL FROM

_RUN_JOB = """
import django, sys
django.setup()
from penguinmails.queue import runner
runner.run(int(sys.argv[1]), worker_id="doomed")
"""


def _kill_during_mail_from(cast: Cast, sandbox: Sandbox, *, last_attempt: bool) -> Job:
    """Start the campaign, run its send job in a worker process and SIGKILL it while the
    sandbox delays its reply to the KILL_AT_MAIL-th MAIL FROM: two messages were delivered
    (DATA done, nothing recorded), the third is between MAIL and RCPT, the rest never began."""
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=LEADS, steps=1, mailboxes=1)
        svc.start_campaign(principal(cast), campaign)
        scheduler.schedule_tenant(cast.tenant, only_due=False)
    connection.set_schema_to_public()
    job = Job.objects.get(tenant=cast.tenant, task=scheduler.SEND_TASK)
    if last_attempt:
        Job.objects.filter(pk=job.pk).update(max_attempts=1)

    doomed: list[subprocess.Popen[bytes]] = []
    senders: list[str] = []

    async def slow_mail(
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        senders.append(address)
        if len(senders) == KILL_AT_MAIL:
            os.kill(doomed[0].pid, signal.SIGKILL)  # dies waiting for this reply
            await asyncio.sleep(0.5)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    sandbox.controller.handler.handle_MAIL = slow_mail
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "JOB_RUNNING_LEASE_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "penguinmails.settings",
    }
    doomed.append(
        subprocess.Popen([sys.executable, "-c", _RUN_JOB, str(job.pk)], cwd=ROOT, env=env)
    )
    assert doomed[0].wait(60) == -signal.SIGKILL
    del sandbox.controller.handler.handle_MAIL
    assert len(sandbox.messages()) == KILL_AT_MAIL - 1
    with schema_context(cast.tenant.schema_name):
        rows = list(Message.objects.order_by("scheduled_for", "id"))
    # All six were claimed in one chunk; only the two delivered carry the DATA marker.
    assert [m.status for m in rows] == [MessageStatus.SENDING] * LEADS
    assert [m.smtp_code for m in rows] == [354, 354] + [None] * (LEADS - 2)
    assert all(m.message_id for m in rows)
    time.sleep(1.5)
    reap_expired()  # the lease expired: queued again, or dead on its last attempt
    return Job.objects.get(pk=job.pk)


def _assert_each_sent_once(cast: Cast, sandbox: Sandbox, claimed: dict[int, str]) -> None:
    received = Counter(m["Message-ID"] for m in sandbox.messages())
    with schema_context(cast.tenant.schema_name):
        rows = list(Message.objects.order_by("scheduled_for", "id"))
        enrollments = set(CampaignLead.objects.values_list("status", flat=True))
    assert {m.pk: m.message_id for m in rows} == claimed  # every Message-ID kept
    assert set(received.values()) == {1} and set(received) == set(claimed.values())
    assert [m.status for m in rows[:2]] == [MessageStatus.UNKNOWN] * 2
    assert all("after DATA started" in m.stop_reason for m in rows[:2])
    assert [m.status for m in rows[2:]] == [MessageStatus.SENT] * (LEADS - 2)
    assert [m.attempts for m in rows[2:]] == [2] * (LEADS - 2)  # the lost claim counts
    assert enrollments == {"finished"}


def test_it_requeues_what_never_reached_data_and_the_jobs_rerun_sends_it(
    cast: Cast, sandbox: Sandbox
) -> None:
    job = _kill_during_mail_from(cast, sandbox, last_attempt=False)
    assert job.status == JobStatus.QUEUED
    with schema_context(cast.tenant.schema_name):
        claimed = dict(Message.objects.values_list("id", "message_id"))
        # Nothing moved on yet: no enrollment advanced while the messages were in limbo.
        assert set(CampaignLead.objects.values_list("status", "last_sent_at")) == {("active", None)}
    runner.run(job.pk, worker_id="survivor")
    with schema_context(cast.tenant.schema_name):
        statuses = Counter(Message.objects.values_list("status", flat=True))
    assert statuses == {MessageStatus.SENT: LEADS - 2, MessageStatus.UNKNOWN: 2}
    drain(cast.tenant)
    _assert_each_sent_once(cast, sandbox, claimed)


def test_it_requeues_what_never_reached_data_when_the_job_is_dead_and_the_scheduler_sweeps(
    cast: Cast, sandbox: Sandbox
) -> None:
    job = _kill_during_mail_from(cast, sandbox, last_attempt=True)
    assert job.status == JobStatus.DEAD
    with schema_context(cast.tenant.schema_name):
        claimed = dict(Message.objects.values_list("id", "message_id"))
        report = scheduler.schedule_tenant(cast.tenant, only_due=False)
        run = report.campaigns[0]
        assert (run.requeued, run.unknown, run.dispatched) == (LEADS - 2, 2, LEADS - 2)
        back = Message.objects.filter(status=MessageStatus.QUEUED)
        assert {m.stopped_by for m in back} == {"worker_lost"}
        assert all("before DATA" in m.stop_reason for m in back)
    assert run_send_jobs(cast.tenant) == 1
    drain(cast.tenant)
    _assert_each_sent_once(cast, sandbox, claimed)
