"""Campaigns through the services, the API and the dashboard: validation, steps and variants,
the state machine (legal and illegal moves), stop on reply, the viewer and the outsider."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from django_tenants.utils import schema_context

from campaigns.models import (
    Campaign,
    CampaignStatus,
    EmailTemplate,
    Lead,
    LeadList,
    LeadStatus,
)
from campaigns.services import campaigns as svc
from deliverability.models import Mailbox, MailboxKind, Security
from penguinmails import states
from penguinmails.errors import IllegalTransition, ValidationFailed
from tenants.models import AuditEvent, Membership
from tenants.services.access import principal_for_membership
from tests.api.conftest import assert_error
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


def _principal(cast: Cast, user=None):  # type: ignore[no-untyped-def]
    return principal_for_membership(
        Membership.objects.get(tenant=cast.tenant, user=user or cast.owner)
    )


def _parts(cast: Cast) -> dict[str, int]:
    """A template, a lead list with one lead and a mailbox in acme's schema."""
    with schema_context(cast.tenant.schema_name):
        template = EmailTemplate.objects.create(name="Intro", subject="Hi", html_body="<p>Hi</p>")
        other = EmailTemplate.objects.create(name="Bump", subject="Re", html_body="<p>Re</p>")
        leads = LeadList.objects.create(name="Prospects")
        lead = Lead.objects.create(email="ada@example.com")
        lead.lists.add(leads)
        mailbox = Mailbox.objects.create(
            address="sales@acme.test",
            kind=MailboxKind.OTHER,
            smtp_host="smtp.acme.test",
            smtp_port=587,
            smtp_security=Security.STARTTLS,
            smtp_username="sales@acme.test",
            smtp_password="secret",
            daily_limit=50,
        )
    return {
        "template": template.pk,
        "other": other.pk,
        "list": leads.pk,
        "lead": lead.pk,
        "mailbox": mailbox.pk,
    }


def _ready(cast: Cast, parts: dict[str, int], name: str = "Spring") -> Campaign:
    with schema_context(cast.tenant.schema_name):
        principal = _principal(cast)
        campaign = svc.create_campaign(
            principal,
            name=name,
            timezone="Europe/Berlin",
            lead_list_ids=[parts["list"]],
            mailbox_ids=[parts["mailbox"]],
        )
        svc.add_step(principal, campaign, delay_amount=0, variants=[(parts["template"], 1)])
        return campaign


def _status(cast: Cast, pk: int) -> str:
    with schema_context(cast.tenant.schema_name):
        return Campaign.objects.get(pk=pk).status


def _count(cast: Cast) -> int:
    with schema_context(cast.tenant.schema_name):
        return Campaign.objects.count()


# --- services ------------------------------------------------------------------------------------
def test_it_creates_a_draft_with_defaults_and_refuses_bad_settings(cast: Cast) -> None:
    parts = _parts(cast)
    campaign = _ready(cast, parts)
    assert campaign.status == CampaignStatus.DRAFT
    assert (campaign.min_gap_seconds, campaign.max_gap_seconds) == (60, 180)
    assert campaign.window_days == [0, 1, 2, 3, 4] and campaign.stop_on_reply
    with schema_context(cast.tenant.schema_name), pytest.raises(ValidationFailed) as caught:
        svc.create_campaign(
            _principal(cast),
            name="spring",
            timezone="Mars/Olympus",
            window_days=[],
            window_start=time(17),
            window_end=time(9),
            min_gap_seconds=300,
            max_gap_seconds=60,
            daily_cap=0,
            mailbox_ids=[999999],
        )
    fields = caught.value.fields
    assert "already exists" in fields["name"][0]
    assert set(fields) >= {
        "timezone",
        "window_days",
        "window_end",
        "max_gap_seconds",
        "daily_cap",
        "mailbox_ids",
    }
    assert _count(cast) == 1
    assert AuditEvent.objects.filter(action="campaign.created", tenant=cast.tenant).count() == 1


def test_it_edits_steps_and_variants_with_their_rules(cast: Cast) -> None:
    parts = _parts(cast)
    campaign = _ready(cast, parts)
    with schema_context(cast.tenant.schema_name):
        principal = _principal(cast)
        with pytest.raises(ValidationFailed) as caught:
            svc.add_step(principal, campaign, delay_amount=2, variants=[])
        assert "variants" in caught.value.fields
        with pytest.raises(ValidationFailed) as caught:
            svc.add_step(principal, campaign, delay_amount=2, variants=[(parts["other"], 0)])
        assert "weight" in caught.value.fields
        second = svc.add_step(principal, campaign, delay_amount=3, variants=[(parts["other"], 2)])
        third = svc.add_step(
            principal, campaign, delay_amount=5, delay_unit="hours", variants=[(parts["other"], 1)]
        )
        assert (second.order, third.order, third.delay_hours) == (2, 3, 5)
        variant = svc.add_variant(principal, second, template_id=parts["template"], weight=3)
        svc.remove_variant(principal, variant)
        with pytest.raises(ValidationFailed):  # the last variant of a step stays
            svc.remove_variant(principal, second.variants.get())
        svc.remove_step(principal, second)
        assert list(campaign.steps.values_list("order", "delay_amount")) == [(1, 0), (2, 5)]


def test_it_moves_through_the_state_machine_with_a_row_per_move(cast: Cast) -> None:
    parts = _parts(cast)
    campaign = _ready(cast, parts)
    with schema_context(cast.tenant.schema_name):
        principal = _principal(cast)
        for action, expected in [
            ("schedule", "scheduled"),
            ("start", "running"),
            ("pause", "paused"),
            ("resume", "running"),
            ("pause", "paused"),
            ("complete", "completed"),
            ("archive", "archived"),
        ]:
            assert svc.transition_to(principal, campaign, action).status == expected
        rows = [(t.from_status, t.to_status) for t in states.history(campaign)]
        assert rows[0] == ("draft", "scheduled") and rows[-1] == ("completed", "archived")
        assert len(rows) == 7 and rows[-1][1] == campaign.__class__.objects.get().status
        for action in svc.MOVES:  # archived is final
            with pytest.raises(IllegalTransition):
                svc.transition_to(principal, campaign, action)
        with pytest.raises(IllegalTransition):  # and a non-draft is not edited
            svc.update_campaign(principal, campaign, daily_cap=10)
    assert AuditEvent.objects.filter(action="campaign.resume", tenant=cast.tenant).count() == 1


def test_it_refuses_illegal_moves_and_incomplete_drafts(cast: Cast) -> None:
    parts = _parts(cast)
    with schema_context(cast.tenant.schema_name):
        principal = _principal(cast)
        empty = svc.create_campaign(principal, name="Empty")
        with pytest.raises(ValidationFailed) as caught:
            svc.schedule_campaign(principal, empty)
        assert set(caught.value.fields) == {"steps", "mailbox_ids", "lead_list_ids"}
        for action in ("pause", "resume", "complete", "unschedule"):
            with pytest.raises(IllegalTransition):
                svc.transition_to(principal, empty, action)
    campaign = _ready(cast, parts)
    with schema_context(cast.tenant.schema_name):
        principal = _principal(cast)
        svc.start_campaign(principal, campaign)
        for action in ("start", "resume", "schedule", "archive"):
            with pytest.raises(IllegalTransition):
                svc.transition_to(principal, campaign, action)
        assert len(states.history(campaign)) == 1
    assert _status(cast, campaign.pk) == "running" and _status(cast, empty.pk) == "draft"


def test_it_marks_a_lead_replied_once(cast: Cast) -> None:
    parts = _parts(cast)
    with schema_context(cast.tenant.schema_name):
        principal = _principal(cast)
        assert svc.mark_lead_replied(principal, parts["lead"]).status == LeadStatus.REPLIED
        assert svc.mark_lead_replied(principal, parts["lead"]).status == LeadStatus.REPLIED
    assert AuditEvent.objects.filter(action="lead.replied", tenant=cast.tenant).count() == 1


# --- API -----------------------------------------------------------------------------------------
def test_it_does_crud_steps_and_moves_through_the_api(cast: Cast) -> None:
    parts = _parts(cast)
    api = client_for(cast.member, cast.tenant, api=True)
    created = api.post(
        "/api/v1/campaigns",
        {
            "name": "API",
            "timezone": "America/New_York",
            "use_lead_timezone": True,
            "window_start": "08:00",
            "window_end": "18:00",
            "lead_list_ids": [parts["list"]],
            "mailbox_ids": [parts["mailbox"]],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["actions"] == ["schedule", "start", "archive"]
    error = assert_error(
        api.post(
            "/api/v1/campaigns",
            {"name": "Bad", "timezone": "Nowhere", "min_gap_seconds": 9, "max_gap_seconds": 1},
            format="json",
        ),
        400,
        "validation_error",
    )
    assert {"timezone", "max_gap_seconds"} <= set(error["fields"])
    assert_error(api.post(f"/api/v1/campaigns/{pk}/start", format="json"), 400)
    bad_step = api.post(f"/api/v1/campaigns/{pk}/steps", {"variants": []}, format="json")
    assert_error(bad_step, 400, "validation_error")
    step = api.post(
        f"/api/v1/campaigns/{pk}/steps",
        {"delay_amount": 0, "variants": [{"template_id": parts["template"], "weight": 3}]},
        format="json",
    )
    assert step.status_code == 201 and step.json()["variants"][0]["weight"] == 3
    patched = api.patch(f"/api/v1/campaigns/{pk}", {"daily_cap": 42}, format="json")
    assert patched.status_code == 200 and patched.json()["daily_cap"] == 42
    assert patched.json()["window_start"] == "08:00:00"
    assert api.post(f"/api/v1/campaigns/{pk}/start").json()["status"] == "running"
    assert_error(api.post(f"/api/v1/campaigns/{pk}/resume"), 409, "illegal_transition")
    assert_error(api.patch(f"/api/v1/campaigns/{pk}", {"daily_cap": 1}, format="json"), 409)
    assert_error(api.delete(f"/api/v1/campaigns/{pk}"), 409)
    assert api.post(f"/api/v1/campaigns/{pk}/pause").json()["status"] == "paused"
    assert api.post(f"/api/v1/campaigns/{pk}/resume").json()["status"] == "running"
    replied = api.post(f"/api/v1/leads/{parts['lead']}/replied")
    assert replied.status_code == 200 and replied.json()["status"] == "replied"
    assert api.get(f"/api/v1/campaigns/{pk}").json()["daily_cap"] == 42


def test_it_lets_a_viewer_read_but_not_write(cast: Cast) -> None:
    parts = _parts(cast)
    campaign = _ready(cast, parts)
    api = client_for(cast.viewer, cast.tenant, api=True)
    assert api.get("/api/v1/campaigns").json()["count"] == 1
    assert_error(api.post("/api/v1/campaigns", {"name": "X"}, format="json"), 403)
    assert_error(api.patch(f"/api/v1/campaigns/{campaign.pk}", {"name": "X"}, format="json"), 403)
    assert_error(api.post(f"/api/v1/campaigns/{campaign.pk}/start"), 403)
    assert_error(api.delete(f"/api/v1/campaigns/{campaign.pk}"), 403)
    assert_error(api.post(f"/api/v1/leads/{parts['lead']}/replied"), 403)
    web = client_for(cast.viewer, cast.tenant)
    page = web.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Spring" in page and "Save campaign" not in page and "Start</button>" not in page
    assert web.get("/campaigns/new/").status_code == 403
    for path in ("", "do/start/", "steps/", "delete/"):
        response = web.post(f"/campaigns/{campaign.pk}/{path}", {"name": "X"})
        assert response.status_code == 403, path
    assert _status(cast, campaign.pk) == "draft" and _count(cast) == 1


def test_it_hides_acme_campaigns_from_the_outsider(cast: Cast) -> None:
    parts = _parts(cast)
    campaign = _ready(cast, parts)
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/campaigns").json()["results"] == []
    assert_error(api.get(f"/api/v1/campaigns/{campaign.pk}"), 404)
    assert_error(api.patch(f"/api/v1/campaigns/{campaign.pk}", {"name": "X"}, format="json"), 404)
    assert_error(api.post(f"/api/v1/campaigns/{campaign.pk}/start"), 404)
    assert_error(api.delete(f"/api/v1/campaigns/{campaign.pk}"), 404)
    assert_error(api.post(f"/api/v1/leads/{parts['lead']}/replied"), 404)
    web = client_for(cast.outsider, cast.other_tenant)
    assert web.get(f"/campaigns/{campaign.pk}/").status_code == 404
    for path in ("", "do/start/", "steps/", "delete/"):
        assert web.post(f"/campaigns/{campaign.pk}/{path}", {"name": "X"}).status_code == 404
    acme_host = client_for(cast.outsider, cast.tenant)
    response = acme_host.get(f"/campaigns/{campaign.pk}/")
    assert response.status_code in (302, 404) and "Spring" not in response.content.decode()
    assert _status(cast, campaign.pk) == "draft" and _count(cast) == 1
    with schema_context(cast.tenant.schema_name):
        assert Lead.objects.get().status == LeadStatus.ACTIVE
        assert Campaign.objects.get().name == "Spring"


# --- dashboard -----------------------------------------------------------------------------------
def test_it_builds_and_starts_a_campaign_from_the_dashboard(cast: Cast) -> None:
    parts = _parts(cast)
    web = client_for(cast.member, cast.tenant)
    form: dict[str, Any] = {
        "name": "Web",
        "timezone": "Europe/Berlin",
        "window_days": ["0", "2"],
        "window_start": "09:00",
        "window_end": "17:00",
        "daily_cap": "100",
        "min_gap_seconds": "60",
        "max_gap_seconds": "180",
        "stop_on_reply": "on",
        "lead_list_ids": [str(parts["list"])],
        "mailbox_ids": [str(parts["mailbox"])],
    }
    bad = web.post("/campaigns/new/", {**form, "timezone": "Nowhere"})
    assert bad.status_code == 400 and "Unknown time zone" in bad.content.decode()
    made = web.post("/campaigns/new/", form)
    assert made.status_code == 302, made.content
    with schema_context(cast.tenant.schema_name):
        campaign = Campaign.objects.get(name="Web")
    assert campaign.window_days == [0, 2]
    assert made["Location"] == f"/campaigns/{campaign.pk}/"
    assert web.post(f"/campaigns/{campaign.pk}/do/start/").status_code == 302
    assert _status(cast, campaign.pk) == "draft"  # no step yet: refused with a message
    step = web.post(
        f"/campaigns/{campaign.pk}/steps/",
        {
            "delay_amount": "0",
            "delay_unit": "days",
            "template_id": parts["template"],
            "weight": "1",
        },
    )
    assert step.status_code == 302
    page = web.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Step 1" in page and "Intro" in page and "Start</button>" in page
    assert web.post(f"/campaigns/{campaign.pk}/do/start/").status_code == 302
    assert _status(cast, campaign.pk) == "running"
    assert web.post(f"/campaigns/{campaign.pk}/do/resume/").status_code == 409
    assert "Web" in web.get("/campaigns/").content.decode()
