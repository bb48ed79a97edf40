"""Automatic protection of mailboxes and sending domains (docs/inbound.md, "Automatic
protection"): after each recorded bounce or complaint (`evaluate_senders`, called from
campaigns' rollup writer in the same transaction) and in the beat's safety net
(`evaluate_tenant`), the last PROTECTION_WINDOW_DAYS of the sender rollups are judged
(`protection_state.judge`). A flag is recorded and shown; a pause moves the mailbox
active -> paused through its state machine, or holds the domain (`sending_paused_at`, checked by
the send pipeline, logged with `states.note`). Tenant owners and staff are emailed after commit.
The platform-wide bounce rate is the alert engine's rule `platform.bounce_rate`
(penguinmails/alerts/builtin.py)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from deliverability.models import (
    Mailbox,
    MailboxStatus,
    ProtectedKind,
    ProtectionEvent,
    ProtectionLevel,
    SendingDomain,
)
from deliverability.services import protection_state as ps
from deliverability.services import sender_stats
from deliverability.services.mailboxes.lifecycle import pause_mailbox
from penguinmails import states
from penguinmails.alerts import raise_alert
from penguinmails.mail import send_transactional
from tenants.models import Membership, Tenant, User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit

log = logging.getLogger(__name__)


def _today() -> dt.date:
    return timezone.now().date()


def _tenant() -> Tenant | None:
    return sender_stats.current_tenant()


# --- telling people ------------------------------------------------------------------------------
def staff_emails() -> list[str]:
    """Staff users' addresses, plus ADMINS when configured."""
    found = list(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    found += [email for _, email in getattr(settings, "ADMINS", [])]
    return sorted(set(found))


def owner_emails(tenant: Tenant) -> list[str]:
    rows = Membership.objects.filter(tenant=tenant, is_active=True).select_related("role", "user")
    return sorted({m.user.email for m in rows if m.is_owner})


def notify(tenant: Tenant | None, event: ProtectionEvent, what: str) -> None:
    """Email the tenant's owners and staff about a flag or pause (after commit); a pause opens
    the alert engine's protection.paused too."""
    verb = "paused" if event.action == ProtectionLevel.PAUSED else "flagged"
    name = tenant.name if tenant is not None else ""
    variables = {
        "headline": f"PenguinMails {verb} {what.lower()} {event.label}",
        "tenant_name": name,
        "what": what,
        "label": event.label,
        "reason": event.reason,
        "advice": (
            "Sending from it stopped. Check the list and the content, then resume it from the "
            "dashboard: only what is sent after the resume counts from then on."
            if verb == "paused"
            else "Nothing was stopped. It is paused automatically if the rate keeps rising."
        ),
    }
    owners = owner_emails(tenant) if tenant is not None else []
    for to in [*owners, *staff_emails()]:
        send_transactional(
            "protection", to=to, variables=variables, idempotency_key=f"protection-{event.pk}-{to}"
        )
    if event.action == ProtectionLevel.PAUSED:
        # The alert engine (webhook, banners; resolved on resume); staff have the email above.
        raise_alert(
            ps.PAUSED_ALERT,
            ps.alert_subject(ProtectedKind(event.kind), event.object_id),
            summary=f"{what} {event.label} was paused: {event.reason}",
            detail={"event_id": event.pk, "kind": event.kind, "object_id": event.object_id},
            tenant_schema=getattr(connection, "schema_name", None),
            email_staff=False,
        )


# --- evaluating ----------------------------------------------------------------------------------
def _evaluate(
    kind: ProtectedKind, obj: Mailbox | SendingDomain, field: str
) -> ProtectionEvent | None:
    state = ps.state_of(kind, obj.pk, lock=True)
    start = ps.window_start(_today(), state)
    figures = ps.window_figures(sender_stats.totals_since(field, obj.pk, start), start, state)
    verdict = ps.judge(figures)
    if verdict is not None and verdict.level == ProtectionLevel.OK:
        ps.clear_flag(state)
    if verdict is None or not ps.escalates(state, verdict):
        return None
    label = obj.address if isinstance(obj, Mailbox) else obj.name
    event = ps.record(state, verdict, figures, start=start, label=label)
    if verdict.level == ProtectionLevel.PAUSED:
        if isinstance(obj, Mailbox):
            _pause_mailbox(obj, event.reason)
        else:
            _hold_domain(obj, event.reason)
    notify(_tenant(), event, "Mailbox" if kind == ProtectedKind.MAILBOX else "Sending domain")
    log.info("protection: %s %s %s", kind, obj.pk, event.action)
    return event


def _pause_mailbox(mailbox: Mailbox, reason: str) -> None:
    if mailbox.status in (MailboxStatus.ACTIVE, MailboxStatus.FAILING):
        pause_mailbox(None, mailbox, reason=reason)


def _hold_domain(domain: SendingDomain, reason: str) -> None:
    if domain.sending_paused_at is None:
        SendingDomain.objects.filter(pk=domain.pk).update(
            sending_paused_at=timezone.now(), sending_paused_reason=reason[:500]
        )
        states.note(domain, reason=f"sending held: {reason}"[:500])


def evaluate_senders(mailbox_ids: Collection[int]) -> list[ProtectionEvent]:
    """Judge these mailboxes and their domains, in the caller's transaction."""
    events = []
    mailboxes = list(Mailbox.objects.filter(pk__in=mailbox_ids).order_by("pk"))
    names = {m.address.rpartition("@")[2] for m in mailboxes}
    for mailbox in mailboxes:
        events.append(_evaluate(ProtectedKind.MAILBOX, mailbox, "mailbox_id"))
    for domain in SendingDomain.objects.filter(name__in=names).order_by("pk"):
        events.append(_evaluate(ProtectedKind.DOMAIN, domain, "domain_id"))
    return [e for e in events if e is not None]


def evaluate_tenant() -> list[ProtectionEvent]:
    """The safety net (beat, per tenant with recent sends): every mailbox with sends in the
    window, in the current tenant schema, one transaction."""
    since = _today() - dt.timedelta(days=settings.PROTECTION_WINDOW_DAYS - 1)
    ids = set(
        sender_stats.SenderDailyStat.objects.filter(day__gte=since).values_list(
            "mailbox_id", flat=True
        )
    )
    with transaction.atomic():
        return evaluate_senders(ids)


# --- the domain's hold ---------------------------------------------------------------------------
def resume_domain(principal: Principal, domain: SendingDomain) -> SendingDomain:
    """A person lifts protection's hold on a domain (recorded; earlier figures acknowledged)."""
    require(principal, Area.DOMAINS, Level.WRITE)
    actor = principal.user.email if principal.user else "api key"
    with transaction.atomic():
        locked = SendingDomain.objects.select_for_update().get(pk=domain.pk)
        today = sender_stats.totals_since("domain_id", locked.pk, _today()).get(_today())
        ps.acknowledge(
            ProtectedKind.DOMAIN,
            locked.pk,
            label=locked.name,
            today=today or sender_stats.SenderFigures(),
            actor=actor,
        )
        if locked.sending_paused_at is not None:
            SendingDomain.objects.filter(pk=locked.pk).update(
                sending_paused_at=None, sending_paused_reason=""
            )
            states.note(locked, reason=f"sending resumed by {actor}", actor=principal.user)
            audit(
                "domain.resumed", tenant=principal.tenant, actor=principal.user, domain=locked.name
            )
        locked.refresh_from_db()
    return locked
