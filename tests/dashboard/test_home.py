"""The home page in the first hour: the getting-started checklist in the order that works, the
last 7 days' sending figures (from the rollups) and mailbox health, with a flat query count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from billing.models import Plan
from billing.services.plans import change_plan
from campaigns.models import EmailTemplate, Lead
from deliverability.models import DomainStatus, Mailbox, MailboxKind, MailboxStatus, SendingDomain
from deliverability.services.domains import add_domain
from tests.analytics.conftest import World, world  # noqa: F401 - the fixture
from tests.conftest import Cast, client_for
from tests.domains.conftest import principal

ORDER = ["plan", "infrastructure", "domain", "mailboxes", "leads", "template", "campaign"]


def steps_of(cast: Cast, user: object = None) -> dict[str, dict[str, object]]:
    response = client_for(user or cast.owner, cast.tenant).get("/")  # type: ignore[arg-type]
    assert response.status_code == 200
    return {
        s.key: {"done": s.done, "url": s.url, "title": s.title} for s in response.context["steps"]
    }


def mailbox(address: str, status: str) -> Mailbox:
    return Mailbox.objects.create(
        address=address, kind=MailboxKind.OTHER, smtp_host="smtp.example.com", smtp_port=587,
        smtp_password="x", daily_limit=50, status=status,
    )  # fmt: skip


def test_it_lists_the_first_steps_in_the_order_that_works(cast: Cast) -> None:
    response = client_for(cast.owner, cast.tenant).get("/")
    steps = response.context["steps"]
    assert [s.key for s in steps] == ORDER
    done = {s.key: s.done for s in steps}
    # Starter sends from shared servers: plan and infrastructure are done from the start.
    assert done == dict.fromkeys(ORDER, False) | {"plan": True, "infrastructure": True}
    assert response.context["next_step"].key == "domain"
    content = response.content.decode()
    assert "Shared servers" in content and 'href="/domains/"' in content
    assert [s.url for s in steps] == [
        "/billing/", "/infrastructure/", "/domains/", "/mailboxes/", "/campaigns/leads/",
        "/campaigns/templates/", "/campaigns/",
    ]  # fmt: skip


def test_it_marks_steps_done_as_the_workspace_fills(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        domain = add_domain(principal(cast.tenant, cast.owner), name="acme-home.test")
        SendingDomain.objects.filter(pk=domain.pk).update(status=DomainStatus.VERIFIED)
        mailbox("a@acme-home.test", MailboxStatus.ACTIVE)
        Lead.objects.create(email="lead@example.com")
        EmailTemplate.objects.create(name="Intro", subject="Hi", html_body="<p>Hi</p>")
    steps = steps_of(cast)
    assert {k: v["done"] for k, v in steps.items()} == dict.fromkeys(ORDER, True) | {
        "campaign": False
    }
    # The outsider's workspace is still at its start.
    other = client_for(cast.outsider, cast.other_tenant).get("/")
    assert {s.key: s.done for s in other.context["steps"]}["domain"] is False


def test_it_asks_a_plan_with_servers_to_provision_them(cast: Cast) -> None:
    change_plan(cast.tenant, plan=Plan.objects.get(slug="growth"), actor=None)
    steps = steps_of(cast)
    assert steps["plan"]["title"] == "Plan: Growth"
    assert steps["infrastructure"] == {
        "done": False, "url": "/infrastructure/", "title": "Provision your servers",
    }  # fmt: skip


def test_it_shows_each_role_only_the_steps_it_can_open(cast: Cast) -> None:
    member = list(steps_of(cast, cast.member))
    assert member == ["infrastructure", "domain", "mailboxes", "leads", "template", "campaign"]
    outsider = client_for(cast.outsider, cast.tenant).get("/")
    assert outsider.status_code == 302 and outsider["Location"].startswith("/login/")


def test_it_shows_the_last_seven_days_figures_from_the_rollups(
    cast: Cast,
    world: World,  # noqa: F811 - the fixture
) -> None:
    response = client_for(cast.viewer, cast.tenant).get("/")
    # The world's history: ten days ago (outside the window) and today (inside).
    assert response.context["figures"] == {
        "sent": 1, "opened": 1, "clicked": 0, "replied": 0, "bounced": 0,
    }  # fmt: skip
    content = response.content.decode()
    assert "Sending, last 7 days" in content
    assert '<div class="stat" id="figure-sent">' in content
    # The outsider's workspace sent nothing.
    other = client_for(cast.outsider, cast.other_tenant).get("/")
    assert other.context["figures"]["sent"] == 0


def test_it_counts_mailboxes_by_state(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        for n, status in enumerate(
            [
                MailboxStatus.ACTIVE,
                MailboxStatus.ACTIVE,
                MailboxStatus.PAUSED,
                MailboxStatus.FAILING,
            ]
        ):
            mailbox(f"m{n}@acme-health.test", status)
    health = client_for(cast.member, cast.tenant).get("/").context["health"]
    assert (health["active"], health["paused"], health["failing"], health["pending"]) == (
        2,
        1,
        1,
        0,
    )
    other = client_for(cast.outsider, cast.other_tenant).get("/").context["health"]
    assert other["active"] == 0


def fill(cast: Cast, n: int) -> None:
    with schema_context(cast.tenant.schema_name):
        for i in range(n):
            mailbox(f"fill{i}@acme-fill.test", MailboxStatus.ACTIVE)
            Lead.objects.create(email=f"fill{i}@example.com")
            EmailTemplate.objects.create(name=f"T{i}", subject="Hi", html_body="<p>Hi</p>")
            SendingDomain.objects.create(name=f"fill{i}.test", status=DomainStatus.VERIFIED)


def test_it_keeps_the_home_page_query_count_flat(
    cast: Cast,
    world: World,  # noqa: F811 - the fixture
    django_assert_max_num_queries: pytest.FixtureRequest,
) -> None:
    client = client_for(cast.owner, cast.tenant)
    client.get("/")  # warm caches (content types, template loaders)
    with django_assert_max_num_queries(24):  # type: ignore[operator]
        assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as before:
        client.get("/")
    fill(cast, 5)
    with CaptureQueriesContext(connection) as after:
        client.get("/")
    assert len(after) == len(before)
