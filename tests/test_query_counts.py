"""No N+1: every API read and every dashboard page runs as many queries with 3N rows as with N.

The routes are found at run time (tests/routes.py): each GET operation of the OpenAPI document
and each URL pattern of the tenant URL conf, detail routes filled with the rows of
`objects_of`. The rows grow by `grow`, which adds N of every kind, the children attached to the
rows the detail routes show (steps, messages, enrollments, records, import errors...). Pages that
are not pages (POST-only routes answer GET with 405, the switcher redirects) are checked to stay
so and to run the same queries.

Every measurement is taken once, in a module fixture (seeding per case would take minutes); each
parametrized case then checks its route. Measured with Django's CaptureQueriesContext, after a
warm-up request and with the cache emptied, so a cached page is counted computing its data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import (
    Campaign,
    CampaignLead,
    EmailTemplate,
    EventKind,
    Lead,
    LeadImport,
    LeadImportError,
    LeadList,
    Message,
    MessageEvent,
    MessageStatus,
    RowOutcome,
    SequenceStep,
    StepVariant,
    Suppression,
    SuppressionReason,
)
from deliverability.models import DomainRecord, Mailbox, MailboxKind, SendingDomain
from infrastructure.models import IpAddress, VpsInstance
from tenants.models import ApiKey, Invitation, Membership, Role, User
from tests.conftest import _ensure_cast, client_for
from tests.routes import (
    PUBLIC_PAGES,
    Objects,
    api_operations,
    api_url,
    dashboard_pages,
    objects_of,
    page_url,
)

# The measurements run in a module fixture; the mark makes pytest-django create the database.
pytestmark = pytest.mark.django_db

N = 3
# Differences in query count between N and 3N rows that are understood, by route: none today.
# A route listed here needs a comment saying why its count grows and why that is bounded.
ALLOWED_GROWTH: dict[str, int] = {}

API_READS = [op for op in api_operations() if op.method == "GET"]
PAGES = [
    page
    for page in dashboard_pages()
    if page.name.split(":")[-1] not in PUBLIC_PAGES
    # DEBUG-only pages (404 here) over the sandbox's Maildir: no database rows to grow.
    and not page.name.startswith("sandbox:")
]
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@dataclass
class Count:
    status: int
    queries: int
    sql: list[str]


@dataclass
class Measures:
    small: dict[str, Count]
    large: dict[str, Count]


_serial = itertools.count(1)


def grow(objects: Objects, owner: User, n: int) -> None:
    """Add n rows of every kind to the tenant, children under the rows detail routes show."""
    tenant = objects.tenant
    k = objects.kwargs
    now = timezone.now()
    member_role = Role.objects.get(tenant=None, slug="member")
    for _ in range(n):
        i = next(_serial)
        role = Role.objects.create(
            tenant=tenant, slug=f"grown-{i}", name=f"Grown {i}", permissions={"leads": "read"}
        )
        user = User.objects.create_user(f"grown-{i}@example.com", "x")
        Membership.objects.create(tenant=tenant, user=user, role=role)
        Invitation.objects.create(
            tenant=tenant,
            email=f"invitee-{i}@example.com",
            role=member_role,
            token_hash=f"{i:064d}",
            invited_by=owner,
            expires_at=now + dt.timedelta(days=7),
        )
        ApiKey.objects.create(
            tenant=tenant, name=f"key {i}", prefix=f"g{i:08d}", key_hash="x", role=role
        )
        vps = VpsInstance.objects.create(
            tenant=tenant, provider="local", name=f"grown-vps-{i}", hostname=f"mail{i}.test"
        )
        IpAddress.objects.create(vps=vps, tenant=tenant, address=f"10.9.{i // 250}.{i % 250}")
    with schema_context(tenant.schema_name):
        campaign = Campaign.objects.get(pk=k["campaign_id"])
        step = SequenceStep.objects.get(pk=k["step_id"])
        variant = StepVariant.objects.get(pk=k["variant_id"])
        main_list = LeadList.objects.get(pk=objects.api_ids["lists"])
        main_import = LeadImport.objects.get(pk=k["import_id"])
        main_domain = SendingDomain.objects.get(pk=k["domain_id"])
        main_lead = Lead.objects.get(pk=k["lead_id"])
        for _ in range(n):
            i = next(_serial)
            template = EmailTemplate.objects.create(name=f"T{i}", subject="S", text_body="B")
            other = Campaign.objects.create(name=f"C{i}")
            other.lead_lists.add(LeadList.objects.create(name=f"L{i}"))
            other_step = SequenceStep.objects.create(campaign=other, order=1)
            StepVariant.objects.create(step=other_step, template=template)
            # The main campaign's steps, each with two variants.
            extra = SequenceStep.objects.create(campaign=campaign, order=step.order + i)
            extra_variant = StepVariant.objects.create(step=extra, template=template)
            StepVariant.objects.create(step=extra, template=template, weight=2)
            mailbox = Mailbox.objects.create(
                address=f"m{i}@example.com",
                kind=MailboxKind.GOOGLE,
                smtp_host="127.0.0.1",
                smtp_port=2525,
                smtp_security="none",
                smtp_username=f"m{i}@example.com",
                smtp_password="x",
                daily_limit=10,
            )
            campaign.mailboxes.add(mailbox)
            lead = Lead.objects.create(email=f"l{i}@example.com", first_name=f"L{i}")
            lead.lists.add(main_list)
            CampaignLead.objects.create(campaign=campaign, lead=lead)
            # A message to the new lead, and one more to the main lead (the lead page's list).
            for who, at_step, at_variant in (
                (lead, step, variant),
                (main_lead, extra, extra_variant),
            ):
                message = Message.objects.create(
                    campaign=campaign,
                    step=at_step,
                    variant=at_variant,
                    lead=who,
                    mailbox=mailbox,
                    to_email=who.email,
                    status=MessageStatus.SENT,
                    sent_at=now,
                    scheduled_for=now,
                    message_id=f"<g{i}-{who.pk}@example.com>",
                )
                MessageEvent.objects.create(
                    message=message, campaign_id=campaign.pk, kind=EventKind.OPEN, at=now
                )
            Suppression.objects.create(value=f"s{i}@example.com", reason=SuppressionReason.MANUAL)
            LeadImport.objects.create(file=f"lead-imports/{i}.csv", original_name=f"{i}.csv")
            LeadImportError.objects.create(
                lead_import=main_import,
                line=i,
                email=f"e{i}@",
                outcome=RowOutcome.FAILED,
                reason="bad",
            )
            domain = SendingDomain.objects.create(
                name=f"d{i}.example.com",
                tracking_host=f"t.d{i}.example.com",
                dkim_selector="pm1",
                dkim_public_key="AAAA",
                dkim_private_key="x",
                dmarc_rua=f"dmarc@d{i}.example.com",
            )
            for target in (domain, main_domain):
                DomainRecord.objects.create(
                    domain=target,
                    position=i,
                    purpose="spf",
                    type="TXT",
                    name=f"r{i}",
                    value="v=spf1 -all",
                    ttl=300,
                    required=True,
                )


def _count(client: Client, url: str) -> Count:
    client.get(url)  # warm-up: per-process caches (content types, plans) are not per request
    caches["default"].clear()  # a local-memory cache (LOCMEM), this process's own
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)  # type: ignore[attr-defined]
    connection.set_schema_to_public()
    return Count(response.status_code, len(queries), [q["sql"] for q in queries.captured_queries])


def _measure_all(objects: Objects, owner_client: Client, api_client: Client) -> dict[str, Count]:
    counts = {}
    for op in API_READS:
        counts[str(op)] = _count(api_client, api_url(op, objects))
    for page in PAGES:
        counts[str(page)] = _count(owner_client, page_url(page, objects))
    return counts


@pytest.fixture(scope="module")
def measures(django_db_setup: None, django_db_blocker: Any) -> Iterator[Measures]:
    throttle = {"DEFAULT_THROTTLE_RATES": {"tenant": "1000000/min"}}
    from django.conf import settings

    rest = {**settings.REST_FRAMEWORK, **throttle}
    with (
        django_db_blocker.unblock(),
        override_settings(CACHES=LOCMEM, REST_FRAMEWORK=rest),
        transaction.atomic(),
    ):
        connection.set_schema_to_public()
        cast = _ensure_cast()
        objects = objects_of(cast.tenant, cast.owner, cast.member, "qcount")
        owner = client_for(cast.owner, cast.tenant)
        api = client_for(cast.owner, cast.tenant, api=True)
        grow(objects, cast.owner, N)
        small = _measure_all(objects, owner, api)
        grow(objects, cast.owner, 2 * N)
        large = _measure_all(objects, owner, api)
        connection.set_schema_to_public()
        transaction.set_rollback(True)
    yield Measures(small, large)


def _shape(sql: str) -> str:
    """The query without its literals, so one query per row shows as the same shape."""
    return re.sub(r"'[^']*'|\b\d+\b", "?", sql)


def _check(key: str, measures: Measures, *, must_render: bool) -> None:
    small, large = measures.small[key], measures.large[key]
    assert small.status < 500 and large.status < 500, (small.status, large.status)
    assert small.status == large.status, (small.status, large.status)
    if must_render:
        assert small.status == 200, small.status
    growth = large.queries - small.queries
    allowed = ALLOWED_GROWTH.get(key, 0)
    extra = "\n".join(
        (Counter(map(_shape, large.sql)) - Counter(map(_shape, small.sql))).elements()
    )
    assert growth <= allowed, (
        f"{key}: {small.queries} queries with {N} rows of each kind, {large.queries} with "
        f"{3 * N}: an N+1. Queries only in the larger run:\n{extra}"
    )


@pytest.mark.parametrize("op", API_READS, ids=str)
def test_it_runs_a_constant_number_of_queries_per_api_read(op: Any, measures: Measures) -> None:
    _check(str(op), measures, must_render=True)


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_it_runs_a_constant_number_of_queries_per_page(page: Any, measures: Measures) -> None:
    # POST-only routes answer GET with 405 and the switcher redirects; both stay constant too.
    _check(str(page), measures, must_render=False)


def test_it_measures_every_page_that_renders(measures: Measures) -> None:
    rendered = [key for key, count in measures.small.items() if count.status == 200]
    assert len(rendered) >= 50, rendered
