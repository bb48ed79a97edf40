"""Support access: staff look into a tenant's data read-only, with a reason, and the tenant sees
every look in its audit log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import DatabaseError
from django.test import Client
from django_tenants.utils import schema_context

from campaigns.models import Campaign, Lead
from deliverability.models import DomainStatus, Mailbox, MailboxKind, SendingDomain
from penguinmails.errors import PermissionDenied, ValidationFailed
from tenants import support
from tenants.models import AuditEvent, AuditSource, User
from tenants.support import SUPPORT_LOOK, SupportPanel, available_panels, look_into_tenant
from tests.conftest import PASSWORD, Cast, client_for

REASON = "Ticket 4182: the customer asks why the spring campaign is paused"


@pytest.fixture
def staff(cast: Cast) -> User:
    return User.objects.create_superuser("support@penguinmails.example.com", PASSWORD)


@pytest.fixture
def admin_client(staff: User) -> Client:
    return client_for(staff, None)


@pytest.fixture
def acme_data(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        SendingDomain.objects.create(name="acme-mail.test", status=DomainStatus.VERIFIED)
        Mailbox.objects.create(
            address="sales@acme-mail.test", kind=MailboxKind.OTHER, smtp_host="smtp.example.com",
            smtp_port=587, smtp_password="s3cret-smtp-pass", daily_limit=50,
        )  # fmt: skip
        Campaign.objects.create(name="Spring outreach")
        for i in range(3):
            Lead.objects.create(email=f"lead{i}@example.com")
    with schema_context(cast.other_tenant.schema_name):
        Campaign.objects.create(name="Globex secret plan")


def url(cast: Cast) -> str:
    return f"/admin/tenants/tenant/{cast.tenant.pk}/support/"


def test_the_tenant_page_links_the_look(cast: Cast, admin_client: Client) -> None:
    page = admin_client.get(f"/admin/tenants/tenant/{cast.tenant.pk}/change/")
    assert url(cast).encode() in page.content


def test_it_asks_for_a_reason_before_showing_anything(
    cast: Cast, admin_client: Client, acme_data: None
) -> None:
    form = admin_client.get(url(cast))
    assert form.status_code == 200
    assert b"Spring outreach" not in form.content
    refused = admin_client.post(url(cast), {"reason": "", "panels": ["campaigns"]})
    assert refused.status_code == 400
    assert "reason" in refused.context["form"].errors
    short = admin_client.post(url(cast), {"reason": "because", "panels": ["campaigns"]})
    assert short.status_code == 400 and b"Spring outreach" not in short.content
    unknown = admin_client.post(url(cast), {"reason": REASON, "panels": ["passwords"]})
    assert unknown.status_code == 400
    assert not AuditEvent.objects.filter(action=SUPPORT_LOOK).exists()


def test_a_look_shows_the_tenants_data_read_only_and_is_in_its_log(
    cast: Cast, admin_client: Client, staff: User, acme_data: None
) -> None:
    panels = list(available_panels())
    assert panels == [
        "domains", "mailboxes", "campaigns", "leads", "messages", "webhooks", "webhook_deliveries",
    ]  # fmt: skip
    response = admin_client.post(url(cast), {"reason": REASON, "panels": panels})
    assert response.status_code == 200
    body = response.content.decode()
    for shown in ("acme-mail.test", "sales@acme-mail.test", "Spring outreach", "Recent messages"):
        assert shown in body
    assert "s3cret-smtp-pass" not in body  # no credentials
    assert "Globex secret plan" not in body  # only this tenant
    leads = next(p for p in response.context["look"].panels if p.title == "Leads (counts)")
    assert ["all leads", "3"] in leads.rows
    assert "<form" not in body.split("Read-only view", 1)[1].split("Another look")[0]

    (event,) = AuditEvent.objects.filter(action=SUPPORT_LOOK)
    assert event.tenant_id == cast.tenant.pk and event.source == AuditSource.SUPPORT
    assert event.actor_email == staff.email
    assert event.detail == {
        "reason": REASON,
        "viewed": [
            "Sending domains",
            "Mailboxes",
            "Campaigns",
            "Leads (counts)",
            "Recent messages",
            "Webhook endpoints",
            "Recent webhook deliveries",
        ],
    }
    owner_page = client_for(cast.owner, cast.tenant).get("/audit/")
    assert event in owner_page.context["page"].object_list
    assert b"Platform staff (support access)" in owner_page.content
    assert REASON.encode() in owner_page.content
    api = client_for(cast.owner, cast.tenant, api=True).get("/api/v1/audit", {"source": "support"})
    assert [r["detail"]["reason"] for r in api.json()["results"]] == [REASON]
    outsider = client_for(cast.outsider, cast.other_tenant).get("/audit/")
    assert event not in outsider.context["page"].object_list


def test_only_staff_may_look_and_only_with_a_reason(
    cast: Cast, staff: User, acme_data: None
) -> None:
    owner = client_for(cast.owner, None).post(url(cast), {"reason": REASON, "panels": ["leads"]})
    assert owner.status_code == 302 and "/admin/login/" in owner["Location"]
    with pytest.raises(PermissionDenied):
        look_into_tenant(cast.tenant, actor=cast.owner, reason=REASON, panels=["leads"])
    with pytest.raises(ValidationFailed):
        look_into_tenant(cast.tenant, actor=staff, reason="", panels=[])
    assert not AuditEvent.objects.filter(action=SUPPORT_LOOK).exists()


@pytest.fixture
def writing_panel() -> Iterator[str]:
    def sneaky() -> SupportPanel:
        Campaign.objects.create(name="Written during a look")
        return SupportPanel(title="Sneaky", columns=[], rows=[])

    support.register_support_panel("sneaky", "Sneaky", sneaky)
    yield "sneaky"
    support._panels.pop("sneaky", None)


def test_postgresql_refuses_any_write_during_a_look(
    cast: Cast, staff: User, writing_panel: str
) -> None:
    with pytest.raises(DatabaseError, match="read-only transaction"):
        look_into_tenant(cast.tenant, actor=staff, reason=REASON, panels=[writing_panel])
    with schema_context(cast.tenant.schema_name):
        assert not Campaign.objects.filter(name="Written during a look").exists()
    # A normal look still works afterwards, and is recorded.
    look = look_into_tenant(cast.tenant, actor=staff, reason=REASON, panels=["campaigns"])
    assert look.panels[0].title == "Campaigns"
    assert AuditEvent.objects.filter(action=SUPPORT_LOOK, tenant=cast.tenant).count() == 1
