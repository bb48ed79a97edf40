"""Email templates: create, update, duplicate, delete, preview and send a test (docs/templates.md).

Every function runs in the tenant's schema (templates are tenant rows) and checks the principal's
access to Area.TEMPLATES. Writes validate the whole template first (`campaigns.rendering.validate`)
and refuse with ValidationFailed naming each field's problems, so nothing is half-written.

A test send goes through Django's email backend with the sample lead's values: the campaign
sender (mailboxes, tracking, unsubscribe headers) comes with campaigns.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from email_validator import EmailNotValidError, validate_email

from campaigns import rendering
from campaigns.models import EmailTemplate
from penguinmails.errors import NotFound, ValidationFailed
from tenants.db import require_schema
from tenants.models import User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

# The lead a preview and a test send use when none is given.
SAMPLE_LEAD: dict[str, object] = {
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines Ltd",
    "title": "Head of Research",
    "website": "https://example.com",
    "phone": "+44 20 7946 0000",
    "timezone": "Europe/London",
    "custom": {},
}
# Fields of the form/API that each rendering part maps to.
_FIELD_OF_PART = {"subject": "subject", "html": "html_body", "text": "text_body"}
MAX_NAME_CHARS = 200


def _in_schema(principal: Principal) -> None:
    require_schema(principal.tenant, "template services")


def _actor(principal: Principal) -> User | None:
    return principal.user


def custom_fields_of_tenant() -> list[str] | None:
    """The custom field names leads have in this schema, or None when any `custom.<name>` is
    accepted (no custom field registry exists yet: leads bring theirs on import)."""
    return None


# --- reads ---------------------------------------------------------------------------------------
def list_templates(principal: Principal) -> QuerySet[EmailTemplate]:
    require(principal, Area.TEMPLATES, Level.READ)
    _in_schema(principal)
    return EmailTemplate.objects.all()


def access_template(principal: Principal, template_id: int | str) -> EmailTemplate:
    """One of the principal's tenant's templates, or NotFound (another tenant's ids live in
    another schema, so they are unknown here)."""
    require(principal, Area.TEMPLATES, Level.READ)
    _in_schema(principal)
    try:
        found = EmailTemplate.objects.filter(pk=int(template_id)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such template.")
    return found


# --- validation ----------------------------------------------------------------------------------
def _cleaned(
    *, name: str, subject: str, html_body: str, text_body: str, exclude_pk: int | None = None
) -> dict[str, object]:
    """The fields to store, or ValidationFailed with every field's problems at once."""
    name = " ".join((name or "").split())
    subject = (subject or "").strip()
    html_body = (html_body or "").strip()
    text_body = (text_body or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Give the template a name."]
    elif len(name) > MAX_NAME_CHARS:
        errors["name"] = [f"At most {MAX_NAME_CHARS} characters."]
    elif EmailTemplate.objects.filter(name__iexact=name).exclude(pk=exclude_pk or 0).exists():
        errors["name"] = [f"A template named “{name}” already exists."]
    if not subject:
        errors["subject"] = ["Write a subject."]
    if not html_body and not text_body:
        errors["html_body"] = ["Write the HTML part, the text part, or both."]
    generated = not text_body and bool(html_body)
    if generated:
        text_body = rendering.html_to_text(html_body)
    issues = rendering.validate(
        subject, html_body, text_body, custom_fields=custom_fields_of_tenant()
    )
    for part, found in issues.items():
        field = _FIELD_OF_PART[part]
        if part == "text" and generated:
            continue  # the same problems are reported on the HTML it came from
        errors.setdefault(field, []).extend(str(issue) for issue in found)
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(f"The template was not saved: {first}", fields=errors)
    return {
        "name": name,
        "subject": subject,
        "html_body": html_body,
        "text_body": text_body,
        "text_generated": generated,
        "variables": rendering.variables_of(subject, html_body, text_body),
    }


def _save(template: EmailTemplate) -> None:
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:  # a concurrent save of the same name won
        message = f"A template named “{template.name}” already exists."
        raise ValidationFailed(message, fields={"name": [message]}) from None


# --- writes --------------------------------------------------------------------------------------
def create_template(
    principal: Principal, *, name: str, subject: str, html_body: str = "", text_body: str = ""
) -> EmailTemplate:
    """A new template; the text part is generated from the HTML when left empty."""
    require(principal, Area.TEMPLATES, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        fields = _cleaned(name=name, subject=subject, html_body=html_body, text_body=text_body)
        template = EmailTemplate(
            **fields, created_by_email=principal.user.email if principal.user else ""
        )
        _save(template)
        audit(
            "template.created",
            tenant=principal.tenant,
            actor=_actor(principal),
            template_id=template.pk,
            name=template.name,
        )
    return template


def update_template(
    principal: Principal,
    template: EmailTemplate,
    *,
    name: str,
    subject: str,
    html_body: str = "",
    text_body: str = "",
) -> EmailTemplate:
    """Replace a template's content (an empty text part is generated again from the HTML)."""
    require(principal, Area.TEMPLATES, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        locked = EmailTemplate.objects.select_for_update().filter(pk=template.pk).first()
        if locked is None:
            raise NotFound("No such template.")
        fields = _cleaned(
            name=name,
            subject=subject,
            html_body=html_body,
            text_body=text_body,
            exclude_pk=locked.pk,
        )
        for key, value in fields.items():
            setattr(locked, key, value)
        _save(locked)
        audit(
            "template.updated",
            tenant=principal.tenant,
            actor=_actor(principal),
            template_id=locked.pk,
            name=locked.name,
        )
    return locked


def duplicate_template(
    principal: Principal, template: EmailTemplate, *, name: str | None = None
) -> EmailTemplate:
    """A copy named "<name> (copy)", "<name> (copy 2)"... unless a name is given."""
    require(principal, Area.TEMPLATES, Level.WRITE)
    _in_schema(principal)
    if not name:
        base = f"{template.name} (copy"[: MAX_NAME_CHARS - 5]
        name = f"{base})"
        n = 2
        while EmailTemplate.objects.filter(name__iexact=name).exists():
            name = f"{base} {n})"
            n += 1
    return create_template(
        principal,
        name=name,
        subject=template.subject,
        html_body=template.html_body,
        text_body="" if template.text_generated else template.text_body,
    )


def delete_template(principal: Principal, template: EmailTemplate) -> None:
    require(principal, Area.TEMPLATES, Level.WRITE)
    _in_schema(principal)
    with transaction.atomic():
        deleted, _ = EmailTemplate.objects.filter(pk=template.pk).delete()
        if not deleted:
            raise NotFound("No such template.")
        audit(
            "template.deleted",
            tenant=principal.tenant,
            actor=_actor(principal),
            template_id=template.pk,
            name=template.name,
        )


# --- preview and test send -----------------------------------------------------------------------
def sample_lead(overrides: Mapping[str, object] | None = None) -> dict[str, object]:
    """SAMPLE_LEAD with the given values over it (blank values kept: they show fallbacks)."""
    lead = dict(SAMPLE_LEAD)
    lead["custom"] = {}
    for key, value in (overrides or {}).items():
        if key == "custom" and isinstance(value, Mapping):
            lead["custom"] = dict(value)
        else:
            lead[key] = value
    return lead


def preview(
    principal: Principal,
    *,
    subject: str,
    html_body: str,
    text_body: str = "",
    lead: Mapping[str, object] | None = None,
    seed: str = "preview",
) -> rendering.Rendered:
    """Render unsaved content for a lead (the editor's live preview); ValidationFailed with the
    problems otherwise. Writes nothing."""
    require(principal, Area.TEMPLATES, Level.READ)
    if not (text_body or "").strip():
        text_body = rendering.html_to_text(html_body or "")
    issues = rendering.validate(
        subject, html_body, text_body, custom_fields=custom_fields_of_tenant()
    )
    if issues:
        fields = {
            _FIELD_OF_PART[part]: [str(issue) for issue in found] for part, found in issues.items()
        }
        first = next(iter(fields.values()))[0]
        raise ValidationFailed(f"Cannot preview: {first}", fields=fields)
    return rendering.render(
        subject=subject,
        html_body=html_body,
        text_body=text_body,
        lead=lead if lead is not None else SAMPLE_LEAD,
        seed=seed,
    )


def preview_template(
    principal: Principal,
    template: EmailTemplate,
    *,
    lead: Mapping[str, object] | None = None,
    seed: str | None = None,
) -> rendering.Rendered:
    """A saved template rendered for a lead (the sample lead by default)."""
    return preview(
        principal,
        subject=template.subject,
        html_body=template.html_body,
        text_body=template.text_body,
        lead=lead,
        seed=seed or f"preview:{template.pk}",
    )


def send_test(
    principal: Principal,
    template: EmailTemplate,
    *,
    to: str,
    lead: Mapping[str, object] | None = None,
) -> rendering.Rendered:
    """Send the template, rendered for the sample lead, to one address through Django's email
    backend (not the campaign sender: no mailbox, tracking or unsubscribe link yet)."""
    require(principal, Area.TEMPLATES, Level.WRITE)
    _in_schema(principal)
    try:
        address = validate_email((to or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed(str(exc), fields={"to": [str(exc)]}) from None
    rendered = preview_template(principal, template, lead=lead)
    message = EmailMultiAlternatives(
        subject=f"[Test] {rendered.subject}",
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"X-PenguinMails-Test": "template"},
    )
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    # Sent first, audited after: a refused send (SMTP error) raises to the caller and records
    # nothing; the audit row says a message left.
    message.send(fail_silently=False)
    audit(
        "template.test_sent",
        tenant=principal.tenant,
        actor=_actor(principal),
        template_id=template.pk,
        to=address,
    )
    return rendered
