"""Every route of a tenant host, found at run time, and real rows to fill their URL kwargs.

Shared by tests/test_isolation_generic.py and tests/test_query_counts.py. API operations come
from the OpenAPI document (drf-spectacular's generator, the same one `/api/v1/schema/` serves);
dashboard routes from walking the tenant URL conf's resolver. A new route is therefore tested
without anyone listing it, and a route whose kwargs `fill` cannot name fails instead of being
skipped: teach `objects_of` the new kwarg.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import zlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import (
    CampaignLead,
    EmailTemplate,
    EventKind,
    Lead,
    LeadImport,
    LeadImportError,
    LeadList,
    Message,
    MessageEvent,
    RowOutcome,
    Suppression,
    SuppressionReason,
)
from campaigns.services import campaigns as campaign_svc
from deliverability.models import InboundMessage, Mailbox, MailboxKind, SendingDomain
from infrastructure.models import IpAddress, IpStatus, VpsInstance
from reputation.models import Listing
from tenants.models import Invitation, Membership, Role, Tenant, User
from tenants.services.access import principal_for_membership
from tenants.services.apikeys import create_api_key
from webhooks.models import Attempt, Delivery, Endpoint

TENANT_URLCONF = "penguinmails.urls_tenant"
API_PREFIX = "/api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
# Routes that act on no tenant row, reached by anyone (or by the session's own user only).
# Each is tested by its own suite; listing one here is a decision, so say why.
PUBLIC_PAGES = {
    "login",  # the sign-in form of the host (tests/accounts/test_login.py)
    "logout",  # ends the caller's own session; skipped too because it would end the outsider's
    "handoff",  # one-time cross-host login token (tests/dashboard/test_switcher.py)
    "resend_verification",  # re-sends the caller's own verification email
}


# --- Routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of the OpenAPI document."""

    method: str  # upper case
    path: str  # /api/v1/leads/{id}/
    operation_id: str
    params: tuple[str, ...]  # path parameters
    body: dict[str, Any] | None  # the JSON request body's schema, refs resolved

    @property
    def resource(self) -> str:
        return self.path.removeprefix(API_PREFIX).split("/")[0]

    @property
    def is_list(self) -> bool:
        """A GET answering many rows (a paginated or plain array), not one object."""
        return self.method == "GET" and self.response_is_array

    response_is_array: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Page:
    """One dashboard URL pattern: its reversible name and the kwargs its route takes."""

    name: str  # namespaced, for reverse(): "campaigns:lead_detail"
    route: str  # the pattern as written: "campaigns/leads/<int:lead_id>/"
    params: tuple[str, ...]

    def __str__(self) -> str:
        return f"/{self.route} ({self.name})"


def _resolve_refs(node: Any, components: dict[str, Any], depth: int = 0) -> Any:
    if depth > 8:
        return {}
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _resolve_refs(components[name], components, depth + 1)
        return {k: _resolve_refs(v, components, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_refs(v, components, depth + 1) for v in node]
    return node


@cache
def openapi_document() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return dict(SchemaGenerator().get_schema(request=None, public=True))


@cache
def api_operations() -> tuple[Operation, ...]:
    doc = openapi_document()
    components = doc.get("components", {}).get("schemas", {})
    found = []
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ok = op.get("responses", {}).get("200", {}).get("content", {})
            shape = _resolve_refs(next(iter(ok.values()), {}).get("schema", {}), components)
            is_array = shape.get("type") == "array" or "results" in shape.get("properties", {})
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    operation_id=op["operationId"],
                    params=tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path"),
                    body=_resolve_refs(body.get("schema"), components) if body else None,
                    response_is_array=is_array,
                )
            )
    return tuple(found)


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = ""
) -> list[tuple[str, str, URLPattern]]:
    out = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            out += _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        else:
            out.append((prefix + str(pattern.pattern), namespace, pattern))
    return out


def api_url_patterns() -> list[tuple[str, str | None]]:
    """(route, url name) of every pattern under /api/v1/ in the tenant URL conf."""
    return [
        (route, pattern.name)
        for route, _ns, pattern in _walk(get_resolver(TENANT_URLCONF).url_patterns)
        if route.startswith(API_PREFIX.lstrip("/"))
    ]


@cache
def dashboard_pages() -> tuple[Page, ...]:
    """Every URL pattern of a tenant host outside /api/v1/ (the API is walked by its schema)."""
    pages = []
    for route, namespace, pattern in _walk(get_resolver(TENANT_URLCONF).url_patterns):
        if route.startswith(API_PREFIX.lstrip("/")):
            continue
        if pattern.name is None:
            raise AssertionError(f"/{route} has no URL name: name it so tests can reverse it.")
        params = tuple(pattern.pattern.regex.groupindex)
        pages.append(Page(name=namespace + pattern.name, route=route, params=params))
    return tuple(pages)


# --- Rows -----------------------------------------------------------------------------------


@dataclass
class Objects:
    """One tenant's rows, named by the URL kwargs that point at them."""

    tenant: Tenant
    tag: str  # in every identifying string of these rows ("zqacme")
    kwargs: dict[str, Any] = field(default_factory=dict)  # dashboard kwarg -> value
    api_ids: dict[str, int] = field(default_factory=dict)  # API resource -> pk for `{id}`


class Unfillable(LookupError):
    """A route takes a kwarg that `objects_of` does not know: the route would go untested."""


def page_url(page: Page, objects: Objects) -> str:
    missing = [p for p in page.params if p not in objects.kwargs]
    if missing:
        raise Unfillable(f"{page}: no object for kwarg(s) {missing}; add them to objects_of().")
    kwargs = {p: objects.kwargs[p] for p in page.params}
    return reverse(page.name, urlconf=TENANT_URLCONF, kwargs=kwargs)


def api_url(op: Operation, objects: Objects) -> str:
    values = {}
    for name in op.params:
        if name == "id":
            if op.resource not in objects.api_ids:
                raise Unfillable(
                    f"{op}: no {op.resource!r} row for {{id}}; add it to objects_of()."
                )
            values[name] = objects.api_ids[op.resource]
        elif name in objects.kwargs:
            values[name] = objects.kwargs[name]
        else:
            raise Unfillable(
                f"{op}: no object for path parameter {name!r}; add it to objects_of()."
            )
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), op.path)


def bump_sequences(tenant: Tenant, floor: int) -> None:
    """Start the tenant schema's ids at `floor`: ids restart in every schema, so without this
    acme's lead 3 and globex's lead 3 would both exist and a 200 would prove nothing."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            # pg_class, not information_schema.sequences, which leaves out identity columns'.
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = %s",
            [tenant.schema_name],
        )
        for (name,) in cursor.fetchall():
            sequence = f"{quote(tenant.schema_name)}.{quote(name)}"  # names from the catalogue
            cursor.execute(
                f"SELECT setval(%s, GREATEST(%s, (SELECT last_value FROM {sequence})))",  # noqa: S608
                [sequence, floor],
            )


def objects_of(tenant: Tenant, owner: User, member: User | None, tag: str) -> Objects:
    """One of each row a route can point at, in `tenant`, every identifying string holding `tag`.

    Rows are written with the ORM where a service would need outside systems (DNS, SMTP, a VPS
    provider), through the service otherwise.
    """
    now = timezone.now()
    owner_membership = Membership.objects.get(tenant=tenant, user=owner)
    principal = principal_for_membership(owner_membership)
    role = Role.objects.create(
        tenant=tenant, slug=f"{tag}-role", name=f"{tag} role", permissions={"leads": "read"}
    )
    key = create_api_key(tenant, name=f"{tag} key", role=role, actor=owner).key
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=f"invitee-{tag}@example.com",
        role=role,
        token_hash=secrets.token_hex(32),
        invited_by=owner,
        expires_at=now + dt.timedelta(days=7),
    )
    membership = Membership.objects.get(tenant=tenant, user=member) if member else owner_membership
    vps = VpsInstance.objects.create(
        tenant=tenant, provider="local", name=f"{tag}-vps", hostname=f"mail.{tag}.test", size="s"
    )
    # A sending IP of the server (public schema: ids never repeat across tenants).
    ip = IpAddress.objects.create(
        vps=vps, tenant=tenant, status=IpStatus.ACTIVE, ptr_hostname=f"mail.{tag}.test",
        address=f"198.51.100.{zlib.crc32(tag.encode()) % 200 + 20}",
    )  # fmt: skip
    with schema_context(tenant.schema_name):
        template = EmailTemplate.objects.create(
            name=f"{tag} template", subject=f"{tag} subject", text_body=f"Hello from {tag}"
        )
        lead_list = LeadList.objects.create(name=f"{tag} list")
        lead = Lead.objects.create(email=f"lead-{tag}@example.com", first_name=f"{tag} first")
        lead.lists.add(lead_list)
        campaign = campaign_svc.create_campaign(principal, name=f"{tag} campaign")
        campaign.lead_lists.add(lead_list)
        step = campaign_svc.add_step(
            principal, campaign, delay_amount=0, variants=[(template.pk, 1)]
        )
        variant = step.variants.get()
        CampaignLead.objects.create(campaign=campaign, lead=lead)
        domain = SendingDomain.objects.create(
            name=f"{tag}.example.com",
            tracking_host=f"t.{tag}.example.com",
            dkim_selector="pm1",
            dkim_public_key="AAAA",
            dkim_private_key="secret",
            dmarc_rua=f"dmarc@{tag}.example.com",
        )
        # A live blocklist listing of the domain (reputation; /api/v1/reputation/listings).
        Listing.objects.create(
            kind="domain", subject=domain.name, subject_id=domain.pk, tenant_id=tenant.pk,
            zone="dbl.spamhaus.org", list_name="Spamhaus DBL", answer="127.0.1.2",
        )  # fmt: skip
        mailbox = Mailbox.objects.create(
            address=f"sender@{tag}.example.com",
            display_name=f"{tag} sender",
            kind=MailboxKind.GOOGLE,
            smtp_host="127.0.0.1",
            smtp_port=2525,
            smtp_security="none",
            smtp_username=f"sender@{tag}.example.com",
            smtp_password="secret",
            daily_limit=50,
        )
        message = Message.objects.create(
            campaign=campaign,
            step=step,
            variant=variant,
            lead=lead,
            mailbox=mailbox,
            to_email=lead.email,
            subject=f"{tag} subject",
            scheduled_for=now,
        )
        event = MessageEvent.objects.create(
            message=message,
            campaign_id=campaign.pk,
            kind=EventKind.CLICK,
            at=now,
            url=f"https://{tag}.example.com/offer",
        )
        inbound = InboundMessage.objects.create(
            mailbox=mailbox,
            folder="INBOX",
            uidvalidity=1,
            uid=1,
            raw=zlib.compress(
                f"From: lead-{tag}@example.com\r\nTo: sender@{tag}.example.com\r\n"
                f"Subject: Re: {tag} subject\r\nMessage-ID: <reply-{tag}@example.com>\r\n"
                f"In-Reply-To: <sent-{tag}@example.com>\r\n\r\n{tag} reply body\r\n".encode()
            ),
            message_id=f"<reply-{tag}@example.com>",
            kind="reply",
            matched_message_id=message.pk,
        )
        suppression = Suppression.objects.create(
            value=f"gone-{tag}@example.com", reason=SuppressionReason.MANUAL
        )
        # An outgoing webhook endpoint, one delivery and its attempt (written here, not through
        # the service, which would resolve the URL).
        endpoint = Endpoint.objects.create(
            url=f"https://hooks.{tag}.example.com/in",
            events=["message.sent"],
            secret=f"whsec_{tag}",
        )
        delivery = Delivery.objects.create(
            endpoint=endpoint, event="message.sent", event_id=f"msg_{tag}",
            payload={"type": "message.sent", "data": {"to": f"lead-{tag}@example.com"}},
            status="failed",
        )  # fmt: skip
        Attempt.objects.create(delivery=delivery, number=1, status_code=500, response_excerpt=tag)
        lead_import = LeadImport.objects.create(
            file=f"lead-imports/{tag}.csv", original_name=f"{tag}.csv", lead_list=lead_list
        )
        LeadImportError.objects.create(
            lead_import=lead_import,
            line=2,
            email=f"bad-{tag}@",
            outcome=RowOutcome.FAILED,
            reason=f"{tag} bad row",
        )
    kwargs: dict[str, Any] = {
        "campaign_id": campaign.pk,
        "step_id": step.pk,
        "variant_id": variant.pk,
        "message_id": message.pk,
        "inbound_id": inbound.pk,
        "lead_id": lead.pk,
        "template_id": template.pk,
        "suppression_id": suppression.pk,
        "import_id": lead_import.pk,
        "mailbox_id": mailbox.pk,
        "domain_id": domain.pk,
        "ip_id": ip.pk,
        "invitation_id": invitation.pk,
        "membership_id": membership.pk,
        "role_id": role.pk,
        "key_id": key.pk,
        "webhook_id": endpoint.pk,
        "delivery_id": delivery.pk,
        "slug": tenant.slug,  # the workspace switcher
        # Not objects: a campaign move's verb, a sandbox message's key (the sandbox pages are
        # DEBUG only, 404 here; their per-tenant scoping is tested in tests/ops/test_sandbox.py),
        # a login handoff token (an allowlisted public route).
        "action": "pause",
        "key": f"{tag}-message",
        "token": f"{tag}-token",
    }
    api_ids = {
        "members": membership.pk,
        "roles": role.pk,
        "api-keys": key.pk,
        "domains": domain.pk,
        "mailboxes": mailbox.pk,
        "infrastructure": vps.pk,
        "templates": template.pk,
        "leads": lead.pk,
        "campaigns": campaign.pk,
        "events": event.pk,
        "lists": lead_list.pk,
        "suppressions": suppression.pk,
        "messages": message.pk,
        "inbox": inbound.pk,
        "webhooks": endpoint.pk,
    }
    return Objects(tenant=tenant, tag=tag, kwargs=kwargs, api_ids=api_ids)
