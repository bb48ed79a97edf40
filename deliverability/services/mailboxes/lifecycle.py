"""A mailbox's status: `transition_mailbox` (logged), pause and resume, and its daily limit."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from deliverability.models import Mailbox, MailboxStatus
from deliverability.services.mailboxes.access import _actor, _in_schema, _locked, _tenant_here
from deliverability.services.mailboxes.validation import _daily_limit
from deliverability.services.protection_state import acknowledge_mailbox
from deliverability.signals import mailbox_moved
from penguinmails import indexes, states
from tenants.models import User
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require
from tenants.services.audit import record as audit


def transition_mailbox(
    mailbox: Mailbox, to: MailboxStatus, *, reason: str = "", actor: User | None = None
) -> Mailbox:
    """Move `mailbox` from the status it was read in to `to` (logged), with its reason.

    Of two concurrent movers only one wins; the loser gets IllegalTransition instead of
    overwriting a move it never saw.
    """
    fields: dict[str, Any] = {"status_reason": reason[:500]}
    if to == MailboxStatus.PAUSED:
        fields["paused_reason"] = reason[:500]
    elif to == MailboxStatus.ACTIVE:
        fields["paused_reason"] = ""
        fields["consecutive_failures"] = 0
    moved = states.transition(mailbox, to, reason=reason[:500], actor=actor, **fields)
    sync_poll_index(moved)
    tenant = _tenant_here()
    if tenant is not None:
        mailbox_moved.send(sender=Mailbox, tenant=tenant, mailbox=moved, deleted=False)
    return moved


# Read by the inbound poller (docs/inbound.md): a paused or failing mailbox still receives
# bounces and replies to what it sent; its poll backs off on failed logins.
POLLED_STATUSES = frozenset({MailboxStatus.ACTIVE, MailboxStatus.PAUSED, MailboxStatus.FAILING})


def sync_poll_index(mailbox: Mailbox) -> None:
    """Keep the public poll index (penguinmails.indexes) in step with the mailbox's status, in
    the caller's transaction: polled while active, paused or failing with IMAP configured."""
    tenant = _tenant_here()
    if tenant is None:
        return
    if mailbox.status in POLLED_STATUSES and mailbox.imap_host:
        indexes.index_mailbox(tenant.pk, mailbox.pk, reset=mailbox.status == MailboxStatus.ACTIVE)
    else:
        indexes.unindex_mailbox(tenant.pk, mailbox.pk)


def _copy(source: Mailbox, target: Mailbox) -> None:
    for field in (
        "status",
        "status_reason",
        "paused_reason",
        "consecutive_failures",
        "last_test_at",
        "last_test_ok",
        "last_error",
        "last_error_step",
        "daily_limit",
    ):
        setattr(target, field, getattr(source, field))


def pause_mailbox(principal: Principal | None, mailbox: Mailbox, *, reason: str) -> Mailbox:
    """Stop sending from the mailbox until resumed; the reason is shown and recorded.
    `principal` None is the system (the workers' pool)."""
    if principal is not None:
        require(principal, Area.MAILBOXES, Level.WRITE)
        _in_schema(principal.tenant)
    reason = (reason or "").strip() or "paused"
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        transition_mailbox(locked, MailboxStatus.PAUSED, reason=reason, actor=_actor(principal))
        audit(
            "mailbox.paused",
            tenant=_tenant_here(),
            actor=_actor(principal),
            address=locked.address,
            mailbox_id=locked.pk,
            reason=reason,
        )
    _copy(locked, mailbox)
    return mailbox


def resume_mailbox(principal: Principal, mailbox: Mailbox) -> Mailbox:
    """Send from a paused mailbox again (its failure count starts over)."""
    require(principal, Area.MAILBOXES, Level.WRITE)
    _in_schema(principal.tenant)
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        transition_mailbox(locked, MailboxStatus.ACTIVE, reason="resumed", actor=_actor(principal))
        who = principal.user.email if principal.user else "api key"
        acknowledge_mailbox(locked.pk, label=locked.address, actor=who)  # protection's window
        audit(
            "mailbox.resumed",
            tenant=principal.tenant,
            actor=_actor(principal),
            address=locked.address,
            mailbox_id=locked.pk,
        )
    _copy(locked, mailbox)
    return mailbox


def set_daily_limit(principal: Principal, mailbox: Mailbox, *, daily_limit: int | str) -> Mailbox:
    require(principal, Area.MAILBOXES, Level.WRITE)
    _in_schema(principal.tenant)
    limit = _daily_limit(daily_limit)
    with transaction.atomic():
        locked = _locked(mailbox.pk)
        before = locked.daily_limit
        locked.daily_limit = limit
        locked.save(update_fields=["daily_limit"])
        audit(
            "mailbox.limit_changed",
            tenant=principal.tenant,
            actor=_actor(principal),
            address=locked.address,
            mailbox_id=locked.pk,
            before=before,
            after=limit,
        )
    mailbox.daily_limit = limit
    return mailbox
