"""Endpoints: register, change, enable, disable, delete, reveal the secret (docs/webhooks.md).

Every function runs in the tenant's schema and needs write access to the workspace's settings
(owners and admins by default; members and viewers may read the endpoints and their logs). A
URL is vetted by the outbound connection guard (penguinmails/netguard.py) when it is saved and
again before every attempt (webhooks.services.delivery).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from penguinmails import netguard, states
from penguinmails.errors import ValidationFailed
from tenants.db import require_schema
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit
from webhooks.events import Event
from webhooks.models import Delivery, DeliveryStatus, Endpoint, EndpointStatus
from webhooks.services import subscriptions
from webhooks.signing import generate_secret

MAX_ENDPOINTS = 20
# Ports a public endpoint may listen on (loopback, allowed in development only, takes any).
PORTS = (80, 443, 8080, 8443)


@dataclass(frozen=True)
class Created:
    """A new endpoint and its secret in clear: shown once, retrievable later by reveal_secret."""

    endpoint: Endpoint
    secret: str


def _allowed(principal: Principal) -> None:
    require(principal, Area.SETTINGS, Level.WRITE)
    require_schema(principal.tenant, "webhook services")


def schemes() -> tuple[str, ...]:
    """https only; plain http too where loopback is allowed (`make run` and tests)."""
    return ("https", "http") if netguard.loopback_allowed() else ("https",)


def check_url(url: str) -> netguard.Target:
    """The URL's vetted target, or ValidationFailed on `url` saying what is allowed."""
    if len(url or "") > 2000:
        raise ValidationFailed("URL too long.", fields={"url": ["At most 2,000 characters."]})
    try:
        return netguard.check_url(url, schemes=schemes(), ports=PORTS)
    except netguard.Refused as refused:
        raise ValidationFailed(refused.message, fields={"url": [refused.message]}) from None


def clean_events(events: Iterable[object] | None) -> list[str]:
    names = list(events or [])
    known = set(Event.values)
    unknown = sorted({str(n) for n in names if n not in known})
    problem = ""
    if unknown:
        problem = f"Unknown event(s): {', '.join(unknown)}. Choose from {', '.join(Event.values)}."
    elif not names:
        problem = "Choose at least one event."
    if problem:
        raise ValidationFailed(problem, fields={"events": [problem]})
    return [e for e in Event.values if e in set(names)]  # the catalogue's order, no duplicates


def create_endpoint(
    principal: Principal, *, url: str, events: Iterable[object], description: str = ""
) -> Created:
    _allowed(principal)
    url = (url or "").strip()
    check_url(url)
    names = clean_events(events)
    if Endpoint.objects.count() >= MAX_ENDPOINTS:
        message = f"A workspace has at most {MAX_ENDPOINTS} webhook endpoints."
        raise ValidationFailed(message, fields={"url": [message]})
    secret = generate_secret()
    with transaction.atomic():
        endpoint = Endpoint.objects.create(
            url=url,
            events=names,
            description=(description or "")[:200],
            secret=secret,
            created_by_email=principal.user.email if principal.user else "",
        )
        audit(
            "webhook.created",
            tenant=principal.tenant,
            actor=principal.user,
            endpoint=endpoint.pk,
            url=url,
            events=names,
        )
    subscriptions.forget()
    return Created(endpoint, secret)


def update_endpoint(
    principal: Principal,
    endpoint: Endpoint,
    *,
    url: str | None = None,
    events: Iterable[object] | None = None,
    description: str | None = None,
) -> Endpoint:
    _allowed(principal)
    changes: dict[str, object] = {}
    if url is not None:
        check_url(url.strip())
        changes["url"] = url.strip()
    if events is not None:
        changes["events"] = clean_events(events)
    if description is not None:
        changes["description"] = description[:200]
    if not changes:
        return endpoint
    with transaction.atomic():
        Endpoint.objects.filter(pk=endpoint.pk).update(**changes, updated_at=timezone.now())
        audit(
            "webhook.updated",
            tenant=principal.tenant,
            actor=principal.user,
            endpoint=endpoint.pk,
            fields=sorted(changes),
        )
    subscriptions.forget()
    endpoint.refresh_from_db()
    return endpoint


def set_enabled(principal: Principal, endpoint: Endpoint, *, enabled: bool) -> Endpoint:
    """Enable (clearing the failure streak and the reason) or disable by hand."""
    _allowed(principal)
    if enabled == (endpoint.status == EndpointStatus.ENABLED):
        return endpoint
    with transaction.atomic():
        if enabled:
            states.transition(
                endpoint,
                EndpointStatus.ENABLED,
                reason="enabled by hand",
                actor=principal.user,
                disabled_reason="",
                disabled_at=None,
                failing_since=None,
                consecutive_failures=0,
                last_failure_at=None,
            )
        else:
            disable(endpoint, reason="Disabled by hand.", actor=principal.user)
        audit(
            "webhook.enabled" if enabled else "webhook.disabled",
            tenant=principal.tenant,
            actor=principal.user,
            endpoint=endpoint.pk,
        )
    subscriptions.forget()
    return endpoint


def disable(endpoint: Endpoint, *, reason: str, actor: object = None) -> Endpoint:
    """Move to disabled and give up the endpoint's pending deliveries (they can be replayed)."""
    with transaction.atomic():
        states.transition(
            endpoint,
            EndpointStatus.DISABLED,
            reason=reason[:300],
            actor=actor,
            disabled_reason=reason[:300],
            disabled_at=timezone.now(),
        )
        abandon_pending(endpoint, reason="The endpoint is disabled.")
    subscriptions.forget()
    return endpoint


def delete_endpoint(principal: Principal, endpoint: Endpoint) -> None:
    _allowed(principal)
    with transaction.atomic():
        audit(
            "webhook.deleted",
            tenant=principal.tenant,
            actor=principal.user,
            endpoint=endpoint.pk,
            url=endpoint.url,
        )
        endpoint.delete()
    subscriptions.forget()


ROTATION_GRACE = dt.timedelta(hours=24)


def rotate_secret(principal: Principal, endpoint: Endpoint) -> str:
    """A new signing secret, returned in clear once. The old one keeps signing too (a second
    signature) for ROTATION_GRACE, so the receiver can switch without refusing events."""
    _allowed(principal)
    secret = generate_secret()
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
        locked.secret = secret
        locked.updated_at = timezone.now()
        locked.save(update_fields=["previous_secret", "previous_secret_expires_at", "secret",
                                   "updated_at"])  # fmt: skip
        audit("webhook.secret_rotated", tenant=principal.tenant, actor=principal.user,
              endpoint=endpoint.pk)  # fmt: skip
    endpoint.refresh_from_db()
    return secret


def reveal_secret(principal: Principal, endpoint: Endpoint) -> str:
    """The signing secret in clear (owners and admins); each look is audited."""
    _allowed(principal)
    audit(
        "webhook.secret_revealed",
        tenant=principal.tenant,
        actor=principal.user,
        endpoint=endpoint.pk,
    )
    return endpoint.secret.reveal()


def abandon_pending(endpoint: Endpoint, *, reason: str) -> int:
    """Fail the endpoint's pending deliveries (their queued jobs then find nothing to do)."""
    pending = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING)
    return int(
        states.transition(
            pending,
            DeliveryStatus.FAILED,
            reason=reason,
            from_=[DeliveryStatus.PENDING],
            last_error=reason[:300],
            completed_at=timezone.now(),
            next_attempt_at=None,
        )
    )
