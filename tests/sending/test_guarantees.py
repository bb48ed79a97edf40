"""The send path's promises under stress: a worker killed between the SMTP server's acceptance
and the database commit never makes a second message; pause/resume storms and concurrent
scheduler ticks give every lead each step exactly once; a lead's window follows its timezone
across a daylight-saving change, through the scheduler."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from campaigns.models import CampaignLead, Lead, Message, MessageStatus
from campaigns.sending import scheduler
from campaigns.services import campaigns as svc
from penguinmails.models import LIVE_STATUSES, Job
from penguinmails.queue import runner
from penguinmails.queue.reaper import reap_expired
from tests.conftest import Cast
from tests.queue.conftest import ROOT, _test_database_url
from tests.sending.conftest import Sandbox, drain, make_campaign, principal, run_send_jobs

pytestmark = pytest.mark.django_db(transaction=True)

_RUN_JOB = """
import django, sys
django.setup()
from penguinmails.queue import runner
runner.run(int(sys.argv[1]), worker_id="doomed")
"""


def test_it_never_sends_a_second_message_after_a_kill_between_acceptance_and_commit(
    cast: Cast, sandbox: Sandbox
) -> None:
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=1, steps=1, mailboxes=1)
        svc.start_campaign(principal(cast), campaign)
        scheduler.schedule_tenant(cast.tenant, only_due=False)
    connection.set_schema_to_public()
    job = Job.objects.get(tenant=cast.tenant, task=scheduler.SEND_TASK)

    doomed: list[subprocess.Popen[bytes]] = []
    store = sandbox.controller.handler.handle_DATA

    async def accept_then_kill(server: Any, session: Any, envelope: Any) -> str:
        reply = await store(server, session, envelope)  # in the Maildir: accepted
        os.kill(doomed[0].pid, signal.SIGKILL)  # the worker dies before it reads the 250
        await asyncio.sleep(0.2)
        return str(reply)

    sandbox.controller.handler.handle_DATA = accept_then_kill
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
    del sandbox.controller.handler.handle_DATA
    received = sandbox.messages()
    assert len(received) == 1
    with schema_context(cast.tenant.schema_name):
        message = Message.objects.get()
        assert message.status == MessageStatus.SENDING
        assert message.message_id == received[0]["Message-ID"]

    # The reaper gives the job back once its lease expires; it runs again, here and now.
    time.sleep(1.5)
    reap_expired()
    runner.run(job.pk, worker_id="survivor")
    drain(cast.tenant)
    assert len(sandbox.messages()) == 1
    with schema_context(cast.tenant.schema_name):
        message.refresh_from_db()
        assert message.status == MessageStatus.UNKNOWN
        assert message.message_id == received[0]["Message-ID"]
        assert Message.objects.count() == 1
        # Unknown counts as sent for the sequence: the one-step enrollment is finished.
        assert CampaignLead.objects.get().status == "finished"


def _in_thread(tenant: Any, fn: Any) -> threading.Thread:
    def target() -> None:
        try:
            with schema_context(tenant.schema_name):
                fn()
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_it_sends_each_step_exactly_once_through_pause_resume_and_concurrent_ticks(
    cast: Cast, sandbox: Sandbox
) -> None:
    leads, steps = 30, 2
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(cast, sandbox, leads=leads, steps=steps, mailboxes=3)
        svc.start_campaign(principal(cast), campaign)
    tenant = cast.tenant
    for _ in range(5):
        # Two scheduler runs at once, and two beat ticks at once (one live schedule job).
        runs = [
            _in_thread(tenant, lambda: scheduler.schedule_tenant(tenant, only_due=False))
            for _ in range(2)
        ]
        ticks = [threading.Thread(target=lambda: (scheduler.tick(), connections.close_all()))]
        ticks.append(threading.Thread(target=lambda: (scheduler.tick(), connections.close_all())))
        for t in ticks:
            t.start()
        for t in runs + ticks:
            t.join()
        connection.set_schema_to_public()
        live = Job.objects.filter(
            tenant=tenant, task=scheduler.SCHEDULE_TASK, status__in=LIVE_STATUSES
        )
        assert live.count() <= 1
        with schema_context(tenant.schema_name):
            svc.pause_campaign(principal(cast), campaign)
        # Send jobs run against a paused campaign (they hold), one of them half-way through.
        run_send_jobs(tenant)
        with schema_context(tenant.schema_name):
            svc.resume_campaign(principal(cast), campaign)
        run_send_jobs(tenant)
    drain(tenant, rounds=20)
    received = sandbox.messages()
    with schema_context(tenant.schema_name):
        by_id = {m.message_id: (m.lead_id, m.step_id, m.status) for m in Message.objects.all()}
        assert Lead.objects.count() == leads
    ids = [m["Message-ID"] for m in received]
    assert len(ids) == len(set(ids)) == leads * steps
    per_lead_step = Counter((by_id[i][0], by_id[i][1]) for i in ids)
    assert set(per_lead_step.values()) == {1} and len(per_lead_step) == leads * steps
    assert {s for _, _, s in by_id.values()} == {MessageStatus.SENT}


def test_it_follows_the_lead_timezone_across_a_daylight_saving_change(
    cast: Cast, sandbox: Sandbox
) -> None:
    """US clocks spring forward on 2025-03-09; Berlin's stay on CET until 2025-03-30. A 09:00
    window opens at 14:00 UTC in New York the day before, at 13:00 UTC that day."""
    with schema_context(cast.tenant.schema_name):
        campaign = make_campaign(
            cast,
            sandbox,
            steps=1,
            emails=["ny@example.com", "berlin@example.com"],
            use_lead_timezone=True,
            window_start=datetime(2025, 1, 1, 9).time(),
            window_end=datetime(2025, 1, 1, 17).time(),
        )
        Lead.objects.filter(email="ny@example.com").update(timezone="America/New_York")
        Lead.objects.filter(email="berlin@example.com").update(timezone="Europe/Berlin")
        svc.start_campaign(principal(cast), campaign)
        ny = CampaignLead.objects.filter(lead__email="ny@example.com")
        berlin = CampaignLead.objects.filter(lead__email="berlin@example.com")

        saturday = datetime(2025, 3, 8, 13, 30, tzinfo=UTC)  # 08:30 EST, 14:30 CET
        CampaignLead.objects.update(next_due_at=saturday - timedelta(hours=1))
        scheduler.schedule_tenant(cast.tenant, now=saturday, only_due=False)
        assert ny.get().next_due_at == datetime(2025, 3, 8, 14, 0, tzinfo=UTC)
        assert Message.objects.filter(lead__email="berlin@example.com").count() == 1

        # Sunday after the change: 12:00 UTC is 08:00 EDT (it would be 07:00 EST).
        sunday = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
        ny.update(next_due_at=sunday - timedelta(hours=1))
        scheduler.schedule_tenant(cast.tenant, now=sunday, only_due=False)
        assert ny.get().next_due_at == datetime(2025, 3, 9, 13, 0, tzinfo=UTC)
        assert not Message.objects.filter(lead__email="ny@example.com").exists()

        opens = datetime(2025, 3, 9, 13, 0, tzinfo=UTC)
        scheduler.schedule_tenant(cast.tenant, now=opens, only_due=False)
        message = Message.objects.get(lead__email="ny@example.com")
        assert message.scheduled_for == opens
        assert ny.get().next_due_at is None  # in flight
        assert berlin.get().next_due_at is None
