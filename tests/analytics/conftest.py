"""A campaign with sending history built row by row (messages, events and the rollups their
writers would have bumped), independent of the sender and the tracker."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import (
    Campaign,
    CampaignLead,
    EmailTemplate,
    EnrollmentStatus,
    EventKind,
    Lead,
    Message,
    MessageEvent,
    MessageStatus,
    SequenceStep,
    StepVariant,
)
from campaigns.services import campaigns as svc
from campaigns.services.stats import Bump, bump
from tests.conftest import Cast
from tests.domains.conftest import principal

__all__ = ["World", "world"]


@dataclass
class World:
    campaign: Campaign
    step1: SequenceStep
    step2: SequenceStep
    a: StepVariant  # step 1, template "Intro"
    b: StepVariant  # step 1, template "Intro B"
    c: StepVariant  # step 2, template "Bump"
    today: dt.date
    ten_days_ago: dt.date


def _build(cast: Cast) -> World:
    owner = principal(cast.tenant, cast.owner)
    intro = EmailTemplate.objects.create(name="Intro", subject="Hi", html_body="<p>Hi</p>")
    intro_b = EmailTemplate.objects.create(name="Intro B", subject="Hey", html_body="<p>Hey</p>")
    follow = EmailTemplate.objects.create(name="Bump", subject="Re", html_body="<p>Re</p>")
    campaign = svc.create_campaign(owner, name="Spring")
    step1 = svc.add_step(owner, campaign, delay_amount=0, variants=[(intro.pk, 1), (intro_b.pk, 1)])
    step2 = svc.add_step(owner, campaign, delay_amount=3, variants=[(follow.pk, 1)])
    a, b = step1.variants.order_by("id")
    c = step2.variants.get()
    leads = [Lead.objects.create(email=f"lead{i}@example.com") for i in range(1, 5)]
    for lead, status in zip(
        leads,
        [
            EnrollmentStatus.ACTIVE,
            EnrollmentStatus.ACTIVE,
            EnrollmentStatus.STOPPED,
            EnrollmentStatus.FINISHED,
        ],
        strict=True,
    ):
        CampaignLead.objects.create(campaign=campaign, lead=lead, status=status)
    now = timezone.now()
    then = now - dt.timedelta(days=10)
    next_day = then + dt.timedelta(days=1)

    def message(step: SequenceStep, variant: StepVariant, lead: Lead, **fields: object) -> Message:
        return Message.objects.create(
            campaign=campaign,
            step=step,
            variant=variant,
            lead=lead,
            to_email=lead.email,
            scheduled_for=then,
            **fields,
        )

    def event(msg: Message, kind: str, at: dt.datetime, machine: bool = False) -> None:
        MessageEvent.objects.create(
            message=msg, campaign_id=campaign.pk, kind=kind, at=at, is_machine=machine
        )

    sent = MessageStatus.SENT
    # Opened twice (one unique open), clicked and replied the next day.
    m1 = message(step1, a, leads[0], status=sent, sent_at=then, replied_at=next_day)
    event(m1, EventKind.OPEN, then)
    event(m1, EventKind.OPEN, next_day)
    event(m1, EventKind.CLICK, next_day)
    event(m1, EventKind.REPLY, next_day)
    # Only a mail-privacy proxy opened it.
    m2 = message(step1, a, leads[1], status=sent, sent_at=then)
    event(m2, EventKind.OPEN, then, machine=True)
    # Refused at SMTP time: bounced, never sent nor delivered.
    m3 = message(step1, b, leads[2], status=MessageStatus.BOUNCED, bounced_at=then)
    event(m3, EventKind.BOUNCE, then)
    # Opened today by a person, its link followed by a scanner, then unsubscribed.
    m4 = message(step1, b, leads[3], status=sent, sent_at=then, unsubscribed_at=now)
    event(m4, EventKind.OPEN, now)
    event(m4, EventKind.CLICK, now, machine=True)
    event(m4, EventKind.UNSUBSCRIBE, now)
    message(step2, c, leads[0], status=sent, sent_at=now)
    message(step2, c, leads[1])  # queued
    message(step2, c, leads[3], status=MessageStatus.FAILED)

    d0, d1, today = then.date(), next_day.date(), now.date()
    cid = campaign.pk

    def at(variant: StepVariant, day: dt.date, counter: str) -> Bump:
        return Bump(cid, variant.step_id, variant.pk, day, counter)

    bump(
        [
            *(at(a, d0, "sent"), at(a, d0, "delivered"), at(a, d0, "opened")),
            *(at(a, d1, "clicked"), at(a, d1, "replied")),
            *(at(a, d0, "sent"), at(a, d0, "delivered"), at(a, d0, "machine_opened")),
            at(b, d0, "bounced"),  # refused: bounced, not sent (as the pipeline bumps it)
            *(at(b, d0, "sent"), at(b, d0, "delivered"), at(b, today, "opened")),
            *(at(b, today, "machine_clicked"), at(b, today, "unsubscribed")),
            *(at(c, today, "sent"), at(c, today, "delivered"), at(c, today, "failed")),
        ]
    )
    return World(campaign, step1, step2, a, b, c, today, d0)


@pytest.fixture
def world(cast: Cast) -> World:
    with schema_context(cast.tenant.schema_name):
        return _build(cast)
