"""Fixtures for the operator command and the messages API: a campaign in acme sending through
the real scheduler, send jobs and sandbox SMTP server (tests/sending's fixtures)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from campaigns.models import Campaign, Message
from campaigns.services import campaigns as svc
from tests.conftest import Cast
from tests.sending.conftest import Sandbox, make_campaign, principal, run_send_jobs
from tests.sending.conftest import sandbox as sandbox  # noqa: F401  (the fixture, re-exported)


def run(*args: str) -> str:
    """`manage.py campaigns ...` through call_command; its stdout."""
    out = io.StringIO()
    call_command("campaigns", *args, stdout=out)
    return out.getvalue()


def messages_of(cast: Cast, campaign: Campaign) -> list[Message]:
    with schema_context(cast.tenant.schema_name):
        return list(Message.objects.filter(campaign=campaign).order_by("id"))


@dataclass
class World:
    """Campaign `Launch` (3 leads, 2 steps, running): step 1 sent to every lead, step 2 queued
    by a second scheduler run; and `Idle`, a draft with nothing sent."""

    launch: Campaign
    idle: Campaign
    sandbox: Sandbox


@pytest.fixture
def world(cast: Cast, sandbox: Sandbox) -> World:
    with schema_context(cast.tenant.schema_name):
        launch = make_campaign(cast, sandbox, leads=3, steps=2, name="Launch")
        idle = make_campaign(cast, sandbox, steps=1, name="Idle", emails=["idle@example.com"])
        svc.start_campaign(principal(cast), launch)
    run("tick", "--tenant", "acme")
    assert run_send_jobs(cast.tenant) >= 1
    run("tick", "--tenant", "acme")  # step 2: queued, a send job waiting for a worker
    return World(launch=launch, idle=idle, sandbox=sandbox)
