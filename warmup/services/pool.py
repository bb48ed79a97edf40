"""The warm-up pool (docs/warmup.md, "The pool"): opt-in (on by default for hosted mailboxes
when they become active, a choice for connected ones), opt-out, pause and resume, and the public
index (penguinmails.indexes) kept in step with the mailbox's own moves (deliverability's
`mailbox_moved` signal, connected in WarmupConfig.ready()).

A member is active in the index when its mailbox is active and its plan warming or in
maintenance; anything else (paused, failing, disabled mailbox; paused or off plan) takes it out
of the day's pairing. Its scheduled messages are canceled by the sender when their time comes.
Call these in the tenant's schema.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone

from deliverability.models import Mailbox, MailboxKind, MailboxStatus
from infrastructure.models import IpAddress, IpStatus, MailServer
from penguinmails import indexes, states
from penguinmails.errors import DomainError
from tenants.db import TenantConnection
from tenants.models import Tenant, User
from warmup import conf
from warmup.models import (
    PLAN_STATES,  # noqa: F401 - the plan's state machine is declared with the model
    WarmupMessage,
    WarmupMessageStatus,
    WarmupPlan,
    WarmupStatus,
)

RUNNING = frozenset({WarmupStatus.WARMING, WarmupStatus.MAINTENANCE})


def default_on(kind: str) -> bool:
    """Whether a mailbox of `kind` joins the pool by itself when it becomes active: hosted
    (platform) mailboxes do unless WARMUP_HOSTED_DEFAULT=false; connected ones never do."""
    return kind == MailboxKind.HOSTED and conf.HOSTED_DEFAULT


def tenant_here() -> Tenant:
    schema = cast(TenantConnection, connection).schema_name
    tenant = Tenant.objects.filter(schema_name=schema).first()
    if tenant is None:
        raise DomainError(f"not in a tenant's schema ({schema!r})")
    return tenant


def ip_of(mailbox: Mailbox) -> str | None:
    """The IP a hosted mailbox sends from: its mail server's primary sending IP (or the VPS's
    main IP); None for connected mailboxes (their provider's IPs are not ours to pair)."""
    if mailbox.kind != MailboxKind.HOSTED or mailbox.mail_server_id is None:
        return None
    server = MailServer.objects.filter(pk=mailbox.mail_server_id).select_related("vps").first()
    if server is None or server.vps is None:
        return None
    ip = (
        IpAddress.objects.filter(vps=server.vps, is_primary=True)
        .exclude(status=IpStatus.RELEASED)
        .values_list("address", flat=True)
        .first()
    )
    return ip or server.vps.main_ip


def _index(tenant: Tenant, mailbox: Mailbox, plan: WarmupPlan) -> None:
    active = mailbox.status == MailboxStatus.ACTIVE and plan.status in RUNNING
    indexes.join_pool(
        tenant.pk,
        mailbox.pk,
        address=mailbox.address,
        domain=mailbox.address.rpartition("@")[2],
        ip=ip_of(mailbox),
        active=active,
    )


def plan_of(mailbox: Mailbox) -> WarmupPlan | None:
    return WarmupPlan.objects.filter(mailbox=mailbox).first()


def opt_in(mailbox: Mailbox, *, actor: User | None = None, **settings: Any) -> WarmupPlan:
    """Put the mailbox in the pool with a plan (defaults 2 a day, +2, target 40, replies 30 %);
    an opted-out plan comes back warming, its ramp restarted today."""
    tenant = tenant_here()
    with transaction.atomic():
        plan, created = WarmupPlan.objects.get_or_create(mailbox=mailbox, defaults=settings)
        if not created and plan.status == WarmupStatus.OFF:
            plan = states.transition(
                plan,
                WarmupStatus.WARMING,
                reason="opted in",
                actor=actor,
                started_on=timezone.localdate(),
            )
        _index(tenant, mailbox, plan)
    return plan


def _cancel_scheduled(mailbox: Mailbox, reason: str) -> int:
    rows = WarmupMessage.objects.filter(mailbox=mailbox)
    return int(
        states.transition(
            rows,
            WarmupMessageStatus.CANCELED,
            reason=reason,
            from_=[WarmupMessageStatus.SCHEDULED],
            error=reason[:500],
        )
    )


def _move(mailbox: Mailbox, to: WarmupStatus, reason: str, actor: User | None) -> WarmupPlan:
    tenant = tenant_here()
    with transaction.atomic():
        plan = WarmupPlan.objects.select_for_update().filter(mailbox=mailbox).first()
        if plan is None:
            raise DomainError(f"{mailbox.address} is not in the warm-up pool")
        if plan.status == to:
            raise DomainError(f"{mailbox.address}'s warm-up is already {to.label.lower()}")
        if not PLAN_STATES.allows(plan.status, to):
            raise DomainError(f"{mailbox.address}'s warm-up is {plan.status}: cannot be {to}")
        plan = states.transition(plan, to, reason=reason, actor=actor, status_reason=reason[:500])
        if to == WarmupStatus.OFF:
            indexes.leave_pool(tenant.pk, mailbox.pk)
        else:
            _index(tenant, mailbox, plan)
        if to not in RUNNING:
            _cancel_scheduled(mailbox, reason or f"warm-up {to}")
    return plan


def opt_out(mailbox: Mailbox, *, actor: User | None = None) -> WarmupPlan:
    """Leave the pool: the plan is off (kept, with its history), scheduled messages canceled."""
    return _move(mailbox, WarmupStatus.OFF, "opted out", actor)


def pause(mailbox: Mailbox, *, reason: str = "paused", actor: User | None = None) -> WarmupPlan:
    return _move(mailbox, WarmupStatus.PAUSED, reason, actor)


def resume(mailbox: Mailbox, *, actor: User | None = None) -> WarmupPlan:
    """Back to warming (the ramp goes on from its day N; the plan moves to maintenance when the
    day's plan finds it at target)."""
    return _move(mailbox, WarmupStatus.WARMING, "resumed", actor)


def on_mailbox_moved(
    sender: object, *, tenant: Tenant, mailbox: Mailbox, deleted: bool, **_: object
) -> None:
    """deliverability's `mailbox_moved`: keep the pool index in step, in the mover's
    transaction. A deleted mailbox leaves the pool; one that becomes active joins it when its
    kind joins by default (hosted) and it never had a plan; any other move sets its activity."""
    if deleted:
        indexes.leave_pool(tenant.pk, mailbox.pk)
        return
    plan = plan_of(mailbox)
    if plan is None:
        if mailbox.status == MailboxStatus.ACTIVE and default_on(mailbox.kind):
            opt_in(mailbox)
        return
    if plan.status == WarmupStatus.OFF:
        return
    _index(tenant, mailbox, plan)


def season(mailbox: Mailbox, *, days: int) -> int:
    """Count the mailbox's warm-up as begun `days` ago: for a mailbox with a sending history
    behind it (the demo workspace's). Returns how many plans moved (0 when it has none)."""
    if days < 0:
        raise DomainError("days must be 0 or more")
    started = timezone.localdate() - timedelta(days=days)
    return WarmupPlan.objects.filter(mailbox=mailbox).update(started_on=started)


__all__ = [
    "default_on",
    "ip_of",
    "on_mailbox_moved",
    "opt_in",
    "opt_out",
    "pause",
    "plan_of",
    "resume",
    "season",
]
