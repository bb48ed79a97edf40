"""Templates through the services, the dashboard and the API: validation, preview, test sends,
the viewer and the outsider."""

from __future__ import annotations

import pytest
from django.core import mail
from django_tenants.utils import schema_context

from campaigns.models import EmailTemplate
from campaigns.services import templates as svc
from penguinmails.errors import ValidationFailed
from tenants.models import AuditEvent, Membership
from tenants.services.access import principal_for_membership
from tests.api.conftest import assert_error
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db

HTML = '<p>{Hi|Hello} {{first_name|there}}, see <a href="https://acme.test">our site</a>.</p>'


def _principal(cast: Cast, user=None):  # type: ignore[no-untyped-def]
    return principal_for_membership(
        Membership.objects.get(tenant=cast.tenant, user=user or cast.owner)
    )


def _create(cast: Cast, name: str = "Intro", **fields: str) -> EmailTemplate:
    with schema_context(cast.tenant.schema_name):
        return svc.create_template(
            _principal(cast),
            name=name,
            subject=fields.get("subject", "Hi {{first_name}}"),
            html_body=fields.get("html_body", HTML),
            text_body=fields.get("text_body", ""),
        )


def _names(cast: Cast) -> list[str]:
    with schema_context(cast.tenant.schema_name):
        return list(EmailTemplate.objects.values_list("name", flat=True))


# --- services ------------------------------------------------------------------------------------
def test_it_creates_with_generated_text_and_declared_variables(cast: Cast) -> None:
    template = _create(cast, html_body=HTML + "<p>{{custom.industry}}</p>")
    assert template.text_generated
    assert template.text_body.startswith(
        "{Hi|Hello} {{first_name|there}}, see our site (https://acme.test)."
    )
    assert template.variables == ["first_name", "custom.industry"]
    assert template.created_by_email == cast.owner.email
    assert AuditEvent.objects.filter(action="template.created", tenant=cast.tenant).exists()


def test_it_refuses_bad_templates_with_field_errors_and_writes_nothing(cast: Cast) -> None:
    _create(cast)
    with schema_context(cast.tenant.schema_name), pytest.raises(ValidationFailed) as caught:
        svc.create_template(
            _principal(cast),
            name="intro",
            subject="{{lead.__class__}}",
            html_body="<p>{Hi|}</p>",
            text_body="{{ oops",
        )
    fields = caught.value.fields
    assert "already exists" in fields["name"][0]
    assert "not a variable" in fields["subject"][0]
    assert "Empty spintax option" in fields["html_body"][0]
    assert "not closed" in fields["text_body"][0]
    assert _names(cast) == ["Intro"]


def test_it_updates_duplicates_and_deletes(cast: Cast) -> None:
    template = _create(cast)
    with schema_context(cast.tenant.schema_name):
        principal = _principal(cast)
        svc.update_template(
            principal, template, name="Intro v2", subject="Yo", html_body="<p>B</p>", text_body="T"
        )
        template.refresh_from_db()
        assert (template.name, template.text_body, template.text_generated) == (
            "Intro v2",
            "T",
            False,
        )
        copy = svc.duplicate_template(principal, template)
        again = svc.duplicate_template(principal, template)
        assert (copy.name, again.name) == ("Intro v2 (copy)", "Intro v2 (copy 2)")
        svc.delete_template(principal, copy)
    assert sorted(_names(cast)) == ["Intro v2", "Intro v2 (copy 2)"]


def test_it_sends_a_test_rendered_with_the_sample_lead(cast: Cast) -> None:
    template = _create(cast, html_body=HTML + "<p>{{company}}</p>")
    with schema_context(cast.tenant.schema_name):
        svc.send_test(_principal(cast), template, to="qa@example.com")
        with pytest.raises(ValidationFailed) as caught:
            svc.send_test(_principal(cast), template, to="not an address")
    assert "to" in caught.value.fields
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["qa@example.com"] and message.subject == "[Test] Hi Ada"
    html, mime = message.alternatives[0]
    assert mime == "text/html" and "Ada" in html and "Analytical Engines Ltd" in html
    assert "our site (https://acme.test)" in message.body


# --- dashboard -----------------------------------------------------------------------------------
def test_it_creates_edits_and_previews_from_the_dashboard(cast: Cast) -> None:
    client = client_for(cast.member, cast.tenant)
    bad = client.post(
        "/campaigns/templates/new/", {"name": "A", "subject": "{{nope}}", "html_body": "x"}
    )
    assert bad.status_code == 400 and "Unknown variable `nope`" in bad.content.decode()
    assert _names(cast) == []
    made = client.post(
        "/campaigns/templates/new/", {"name": "A", "subject": "Hi", "html_body": HTML}
    )
    assert made.status_code == 302
    with schema_context(cast.tenant.schema_name):
        template = EmailTemplate.objects.get(name="A")
    assert made["Location"] == f"/campaigns/templates/{template.pk}/"
    page = client.get(made["Location"]).content.decode()
    assert "Send test" in page and "not a campaign send" in page
    assert "A" in client.get("/campaigns/templates/").content.decode()
    preview = client.post(
        "/campaigns/templates/preview/",
        {"subject": "For {{first_name}}", "html_body": HTML, "sample_first_name": "<b>Bo</b>"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "For &lt;b&gt;Bo&lt;/b&gt;" in preview  # the page escapes the subject
    assert "srcdoc=" in preview and "<b>Bo" not in preview
    errors = client.post("/campaigns/templates/preview/", {"subject": "{{x.y}}", "html_body": ""})
    assert 'data-preview="errors"' in errors.content.decode()
    sent = client.post(f"/campaigns/templates/{template.pk}/send-test/", {"to": "me@example.com"})
    assert sent.status_code == 302 and len(mail.outbox) == 1
    assert client.post(f"/campaigns/templates/{template.pk}/duplicate/").status_code == 302
    assert client.post(f"/campaigns/templates/{template.pk}/delete/").status_code == 302
    assert _names(cast) == ["A (copy)"]


def test_it_lets_a_viewer_read_and_preview_but_not_write(cast: Cast) -> None:
    template = _create(cast)
    client = client_for(cast.viewer, cast.tenant)
    page = client.get(f"/campaigns/templates/{template.pk}/")
    assert page.status_code == 200 and "Save template" not in page.content.decode()
    assert "New template" not in client.get("/campaigns/templates/").content.decode()
    assert client.get("/campaigns/templates/new/").status_code == 403
    for path in ("", "duplicate/", "delete/", "send-test/"):
        response = client.post(
            f"/campaigns/templates/{template.pk}/{path}",
            {"name": "X", "subject": "Y", "to": "a@b.test"},
        )
        assert response.status_code == 403, path
    api = client_for(cast.viewer, cast.tenant, api=True)
    assert api.get("/api/v1/templates").json()["count"] == 1
    assert_error(
        api.post(
            "/api/v1/templates", {"name": "X", "subject": "Y", "html_body": "Z"}, format="json"
        ),
        403,
    )
    assert_error(api.patch(f"/api/v1/templates/{template.pk}", {"name": "X"}, format="json"), 403)
    assert_error(api.delete(f"/api/v1/templates/{template.pk}"), 403)
    assert (
        api.post(f"/api/v1/templates/{template.pk}/preview", {}, format="json").status_code == 200
    )
    assert _names(cast) == ["Intro"] and not mail.outbox


def test_it_hides_acme_templates_from_the_outsider(cast: Cast) -> None:
    template = _create(cast)
    own_host = client_for(cast.outsider, cast.other_tenant)
    assert own_host.get(f"/campaigns/templates/{template.pk}/").status_code == 404
    for path in ("", "duplicate/", "delete/", "send-test/"):
        response = own_host.post(
            f"/campaigns/templates/{template.pk}/{path}",
            {"name": "X", "subject": "Y", "to": "a@b.test"},
        )
        assert response.status_code == 404, path
    assert "Intro" not in own_host.get("/campaigns/templates/").content.decode()
    acme_host = client_for(cast.outsider, cast.tenant)
    response = acme_host.get(f"/campaigns/templates/{template.pk}/")
    assert response.status_code in (302, 404) and "Intro" not in response.content.decode()
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert api.get("/api/v1/templates").json()["results"] == []
    assert_error(api.get(f"/api/v1/templates/{template.pk}"), 404)
    assert_error(api.patch(f"/api/v1/templates/{template.pk}", {"name": "X"}, format="json"), 404)
    assert_error(api.post(f"/api/v1/templates/{template.pk}/preview", {}, format="json"), 404)
    assert_error(api.delete(f"/api/v1/templates/{template.pk}"), 404)
    with schema_context(cast.tenant.schema_name):
        template.refresh_from_db()
    assert template.name == "Intro" and _names(cast) == ["Intro"] and not mail.outbox


# --- API -----------------------------------------------------------------------------------------
def test_it_does_crud_and_preview_through_the_api(cast: Cast) -> None:
    api = client_for(cast.admin, cast.tenant, api=True)
    created = api.post(
        "/api/v1/templates",
        {"name": "API", "subject": "Hi {{first_name|there}}", "html_body": HTML},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["text_generated"] and body["variables"] == ["first_name"]
    error = assert_error(
        api.post("/api/v1/templates", {"name": "Bad", "subject": "{{x}}"}, format="json"),
        400,
        "validation_error",
    )
    assert "Unknown variable `x`" in error["fields"]["subject"][0]
    assert "html_body" in error["fields"]
    pk = body["id"]
    preview = api.post(
        f"/api/v1/templates/{pk}/preview",
        {"first_name": "<i>Bo</i>", "seed": "l1:s1"},
        format="json",
    ).json()
    assert preview["subject"] == "Hi <i>Bo</i>"
    assert "&lt;i&gt;Bo&lt;/i&gt;" in preview["html"] and "<i>Bo</i>" in preview["text"]
    again = api.post(
        f"/api/v1/templates/{pk}/preview",
        {"first_name": "<i>Bo</i>", "seed": "l1:s1"},
        format="json",
    ).json()
    assert again == preview
    blank = api.post(f"/api/v1/templates/{pk}/preview", {"first_name": ""}, format="json").json()
    assert blank["subject"] == "Hi there"
    patched = api.patch(f"/api/v1/templates/{pk}", {"subject": "New"}, format="json")
    assert patched.status_code == 200 and patched.json()["subject"] == "New"
    assert patched.json()["html_body"] == HTML
    assert api.get(f"/api/v1/templates/{pk}").json()["name"] == "API"
    assert api.delete(f"/api/v1/templates/{pk}").status_code == 204
    assert _names(cast) == []
