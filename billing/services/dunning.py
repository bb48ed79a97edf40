"""Grace period and dunning (docs/billing.md, "Dunning"): the ladder a failed payment starts.

Day 0 is when the tenant's subscription went past due (or unpaid). Then:

- days 0 to BILLING_GRACE_DAYS: the tenant keeps sending; a banner on every dashboard page; the
  owners are emailed on days 0, 3 and 6;
- from day BILLING_GRACE_DAYS: sending is paused: the send pipeline's tenant check holds the
  tenant (`tenants.services.tenancy.register_sending_hold`), and the `Level.SENDING` hooks
  (campaigns) pause its running campaigns; warm-up goes on;
- from day BILLING_SUSPEND_DAYS: the `Level.INFRASTRUCTURE` hooks stop its servers at the VPS
  provider (IPs kept, nothing deleted).

Paying (the subscription active or trialing again) restores, in order: servers started,
campaigns resumed (only those the ladder paused), the hold lifted. `advance` (the daily job
`billing.dunning_advance`) moves every tenant along and retries what failed. Every step is a
DunningStep row (billing page, admin) and every stage change is in the transition log.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing.dunning_hooks import Level, Record, hooks
from billing.models import (
    Dunning,
    DunningStage,
    DunningStep,
    DunningStepKind,
    Payment,
    PaymentStatus,
    Subscription,
    SubscriptionStatus,
)
from penguinmails.analytics_events import capture
from penguinmails.mail.transactional import send_transactional
from penguinmails.states import transition
from tenants.models import Membership, Tenant
from tenants.services.tenancy import register_sending_hold, tenant_url

log = logging.getLogger(__name__)

ADVANCE_TASK = "billing.dunning_advance"
EMAIL_DAYS = (0, 3, 6)
OVERDUE = (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)
PAID_UP = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
HELD = (DunningStage.SENDING_PAUSED, DunningStage.SUSPENDED)
HOLD_REASON = "Sending is paused: the workspace's payment is overdue (pay it on the billing page)."


def _grace_days() -> int:
    return int(settings.BILLING_GRACE_DAYS)


def _suspend_days() -> int:
    return int(settings.BILLING_SUSPEND_DAYS)


def hold_condition() -> Exists:
    """True for a tenant whose sending the ladder paused (tenants' sending_holds query)."""
    return Exists(Dunning.objects.filter(tenant_id=OuterRef("pk"), status__in=HELD))


def sending_paused(schema_name: str) -> bool:
    """Whether the ladder holds this tenant's campaign sending now (warm-up asks: it goes on at
    maintenance level meanwhile)."""
    return Dunning.objects.filter(tenant__schema_name=schema_name, status__in=HELD).exists()


def connect() -> None:
    register_sending_hold("billing.dunning", hold_condition, HOLD_REASON)


# --- steps and emails ---------------------------------------------------------------------------
def _step(
    dunning: Dunning, kind: str, *, day: int, summary: str, detail: Record | None = None
) -> DunningStep:
    values = {"summary": summary[:500], "detail": detail or {}, "at": timezone.now()}
    if kind == DunningStepKind.HOOK_FAILED:
        return DunningStep.objects.create(
            tenant_id=dunning.tenant_id, round=dunning.round, kind=kind, day=day, **values
        )
    step, _ = DunningStep.objects.get_or_create(
        tenant_id=dunning.tenant_id, round=dunning.round, kind=kind, day=day, defaults=values
    )
    return step


def _owners(tenant: Tenant) -> list[str]:
    rows = Membership.objects.filter(tenant=tenant, is_active=True).select_related("role", "user")
    return sorted({m.user.email for m in rows if m.is_owner})


def _email(dunning: Dunning, *, key: str, headline: str, body: str) -> None:
    tenant = dunning.tenant
    variables = {
        "headline": headline,
        "tenant_name": tenant.name,
        "body": body,
        "action_url": tenant_url(tenant, "/billing/"),
    }
    for to in _owners(tenant):
        send_transactional(
            "billing_dunning",
            to=to,
            variables=variables,
            idempotency_key=f"dunning-{tenant.pk}-{dunning.round}-{key}-{to}",
        )


def _day(dunning: Dunning, now: dt.datetime) -> int:
    return (now - dunning.since).days if dunning.since else 0


def _pause_on(dunning: Dunning) -> str:
    assert dunning.since is not None
    return f"{dunning.since + dt.timedelta(days=_grace_days()):%Y-%m-%d}"


# --- starting -----------------------------------------------------------------------------------
def _locked(tenant: Tenant) -> Dunning:
    Dunning.objects.get_or_create(tenant=tenant)
    return Dunning.objects.select_for_update().select_related("tenant").get(tenant=tenant)


@transaction.atomic
def start(tenant: Tenant, *, subscription: Subscription | None, at: dt.datetime) -> Dunning:
    """A payment failed: day 0 of the ladder (nothing if the tenant is already on it)."""
    dunning = _locked(tenant)
    if dunning.status != DunningStage.CLEAR:
        return dunning
    transition(
        dunning,
        DunningStage.GRACE,
        reason="payment failed: grace period",
        subscription=subscription,
        round=dunning.round + 1,
        since=at,
        last_email_day=0,
        stopped={},
    )
    summary = (
        f"The payment failed. Campaigns keep sending until {_pause_on(dunning)} "
        f"({_grace_days()} days); then they pause until it is paid."
    )
    _step(dunning, DunningStepKind.PAST_DUE, day=0, summary=summary)
    _email(dunning, key="day-0", headline="Your PenguinMails payment failed", body=summary)
    capture("payment failed", tenant, {"plan": subscription.plan.slug if subscription else ""})
    return dunning


def note_action_required(payment: Payment) -> None:
    """The bank asks the customer to authenticate (3-D Secure): recorded on the ladder when the
    tenant is on it; the banner asks for it with the invoice's link in any case."""
    dunning = Dunning.objects.filter(tenant_id=payment.tenant_id).first()
    if dunning is None or dunning.status == DunningStage.CLEAR:
        return
    _step(
        dunning,
        DunningStepKind.ACTION_REQUIRED,
        day=_day(dunning, timezone.now()),
        summary="Your bank asks you to authenticate the payment.",
        detail={"invoice": payment.stripe_invoice_id, "url": payment.invoice_url},
    )


def on_subscription(sub: Subscription) -> None:
    """Called whenever a subscription's Stripe state was copied (in its transaction)."""
    latest = (
        Subscription.objects.filter(tenant_id=sub.tenant_id)
        .exclude(status__in=(SubscriptionStatus.INCOMPLETE, SubscriptionStatus.CANCELED))
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is None:
        return
    if latest.status in OVERDUE:
        start(latest.tenant, subscription=latest, at=timezone.now())
    elif latest.status in PAID_UP:
        tenant = latest.tenant
        if Dunning.objects.filter(tenant=tenant).exclude(status=DunningStage.CLEAR).exists():
            transaction.on_commit(lambda: restore(tenant, reason=f"paid ({latest.status})"))


# --- moving along -------------------------------------------------------------------------------
def _stop(dunning: Dunning, level: Level, day: int) -> bool:
    """Run the level's stop hooks; keep what each stopped. False when one failed."""
    ok = True
    for hook in hooks(level):
        try:
            record = hook.stop(dunning.tenant)
        except Exception as exc:  # noqa: BLE001 - any app's failure is recorded and retried
            log.warning("dunning %s: %s failed: %s", dunning.tenant.slug, hook.name, exc)
            _step(
                dunning,
                DunningStepKind.HOOK_FAILED,
                day=day,
                summary=f"{hook.name}: {exc}"[:500],
                detail={"hook": hook.name, "action": "stop"},
            )
            ok = False
            continue
        stopped = dict(dunning.stopped)
        stopped.setdefault(level.value, {})[hook.name] = record
        Dunning.objects.filter(pk=dunning.pk).update(stopped=stopped)
        dunning.stopped = stopped
    return ok


def _pause_sending(dunning: Dunning, day: int) -> None:
    if not _stop(dunning, Level.SENDING, day):
        return
    transition(dunning, DunningStage.SENDING_PAUSED, reason=f"day {day}: grace period over")
    summary = "Campaign sending is paused until the overdue payment is made; warm-up goes on."
    _step(dunning, DunningStepKind.SENDING_PAUSED, day=day, summary=summary,
          detail=dunning.stopped.get(Level.SENDING.value, {}))  # fmt: skip
    _email(dunning, key="paused", headline="Your campaigns are paused", body=summary)


def _suspend(dunning: Dunning, day: int) -> None:
    if not _stop(dunning, Level.INFRASTRUCTURE, day):
        return
    transition(dunning, DunningStage.SUSPENDED, reason=f"day {day}: servers suspended")
    summary = (
        "Your servers are stopped (their IPs are kept, nothing is deleted) until the overdue "
        "payment is made."
    )
    _step(dunning, DunningStepKind.SUSPENDED, day=day, summary=summary,
          detail=dunning.stopped.get(Level.INFRASTRUCTURE.value, {}))  # fmt: skip
    _email(dunning, key="suspended", headline="Your servers are suspended", body=summary)


def _remind(dunning: Dunning, day: int) -> None:
    if day >= _grace_days():
        return  # caught up past the grace period: the pause's own email says it
    due = [d for d in EMAIL_DAYS if d <= day and d < _grace_days()]
    if not due or max(due) <= dunning.last_email_day:
        return
    latest = max(due)
    left = _grace_days() - day
    summary = (
        f"Reminder: the payment is {day} days overdue. Campaigns pause on {_pause_on(dunning)} "
        f"({left} day{'s' if left != 1 else ''} left) unless it is paid."
    )
    Dunning.objects.filter(pk=dunning.pk).update(last_email_day=latest)
    dunning.last_email_day = latest
    _step(dunning, DunningStepKind.EMAIL, day=latest, summary=summary)
    _email(dunning, key=f"day-{latest}", headline="Your PenguinMails payment is overdue",
           body=summary)  # fmt: skip


def advance_tenant(dunning: Dunning, now: dt.datetime) -> str:
    """Take every step due for one tenant (catching up on missed days); returns its stage."""
    paid = (
        Subscription.objects.filter(tenant_id=dunning.tenant_id)
        .exclude(status__in=(SubscriptionStatus.INCOMPLETE, SubscriptionStatus.CANCELED))
        .order_by("-created_at", "-pk")
        .values_list("status", flat=True)
        .first()
    )
    if paid in PAID_UP:  # a restore that failed or was missed
        return restore(dunning.tenant, reason="paid (retried)").status
    day = _day(dunning, now)
    if dunning.status == DunningStage.GRACE:
        _remind(dunning, day)
        if day >= _grace_days():
            _pause_sending(dunning, day)
    if dunning.status == DunningStage.SENDING_PAUSED and day >= _suspend_days():
        _suspend(dunning, day)
    return str(dunning.status)


def escalate(tenant: Tenant) -> str:
    """Staff: take the tenant's next step now, as if its day had come (the admin's "Escalate";
    the walk-through uses it instead of waiting a week). Returns the stage reached."""
    dunning = Dunning.objects.select_related("tenant").get(tenant=tenant)
    if dunning.status == DunningStage.CLEAR or dunning.since is None:
        return str(dunning.status)
    days = _grace_days() if dunning.status == DunningStage.GRACE else _suspend_days()
    return advance_tenant(dunning, max(timezone.now(), dunning.since + dt.timedelta(days=days)))


@dataclass(frozen=True)
class Moved:
    tenant: str
    day: int
    status: str


def advance(now: dt.datetime | None = None) -> list[Moved]:
    """Every tenant on the ladder, one step job (daily beat `billing-dunning`)."""
    moment = now or timezone.now()
    done = []
    rows = Dunning.objects.exclude(status=DunningStage.CLEAR).select_related("tenant")
    for dunning in rows.order_by("pk"):
        status = advance_tenant(dunning, moment)
        done.append(Moved(dunning.tenant.slug, _day(dunning, moment), status))
    return done


# --- restoring ----------------------------------------------------------------------------------
def restore(tenant: Tenant, *, reason: str) -> Dunning:
    """Paid: servers started, then campaigns resumed (only what the ladder stopped), then the
    hold lifted. A restart that fails leaves the tenant where it was, retried by `advance`."""
    dunning = Dunning.objects.select_related("tenant").get(tenant=tenant)
    if dunning.status == DunningStage.CLEAR:
        return dunning
    day = _day(dunning, timezone.now())
    restarted: Record = {}
    for level in (Level.INFRASTRUCTURE, Level.SENDING):
        for hook in hooks(level):
            record = dunning.stopped.get(level.value, {}).get(hook.name)
            if record is None:
                continue
            try:
                restarted[hook.name] = hook.restart(tenant, record)
            except Exception as exc:  # noqa: BLE001 - recorded, retried by advance
                log.warning("dunning restore %s: %s failed: %s", tenant.slug, hook.name, exc)
                _step(dunning, DunningStepKind.HOOK_FAILED, day=day,
                      summary=f"{hook.name}: {exc}"[:500],
                      detail={"hook": hook.name, "action": "restart"})  # fmt: skip
                return dunning
            stopped = dict(dunning.stopped)
            stopped[level.value] = {
                k: v for k, v in stopped.get(level.value, {}).items() if k != hook.name
            }
            Dunning.objects.filter(pk=dunning.pk).update(stopped=stopped)
            dunning.stopped = stopped
    with transaction.atomic():
        dunning = Dunning.objects.select_for_update().select_related("tenant").get(pk=dunning.pk)
        if dunning.status == DunningStage.CLEAR:
            return dunning
        summary = "Paid: sending and servers are back." if restarted else "Paid: all clear."
        _step(dunning, DunningStepKind.RESTORED, day=day, summary=summary, detail=restarted)
        transition(dunning, DunningStage.CLEAR, reason=reason, stopped={}, last_email_day=-1)
    return dunning


# --- what the tenant sees -----------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """The billing page's and the API's view of the ladder: its row while not clear, the
    overdue invoice to pay, the latest steps (those of earlier rounds too)."""

    dunning: Dunning | None
    overdue: Payment | None
    steps: list[DunningStep]

    @property
    def status(self) -> str:
        return str(self.dunning.status) if self.dunning else str(DunningStage.CLEAR)


def summary_for(tenant: Tenant) -> Summary:
    dunning = Dunning.objects.filter(tenant=tenant).exclude(status=DunningStage.CLEAR).first()
    overdue = None
    if dunning is not None:
        overdue = Payment.objects.filter(
            tenant=tenant, status__in=(PaymentStatus.FAILED, PaymentStatus.ACTION_REQUIRED)
        ).first()
    return Summary(dunning, overdue, list(DunningStep.objects.filter(tenant=tenant)[:20]))


@dataclass(frozen=True)
class Banner:
    level: str  # "warn" or "danger"
    text: str
    link: str = ""
    link_text: str = ""


def banner_for(tenant: Tenant) -> Banner | None:
    """The dashboard's billing banner (every page): authenticate, or the ladder's stage."""
    action = (
        Payment.objects.filter(tenant=tenant, status=PaymentStatus.ACTION_REQUIRED)
        .values_list("invoice_url", flat=True)
        .first()
    )
    if action is not None:
        return Banner(
            "warn",
            "Your bank asks you to authenticate the latest payment.",
            link=action or "/billing/",
            link_text="Authenticate the payment",
        )
    dunning = Dunning.objects.filter(tenant=tenant).exclude(status=DunningStage.CLEAR).first()
    if dunning is None:
        return None
    if dunning.status == DunningStage.GRACE:
        text = f"Your payment failed. Campaigns pause on {_pause_on(dunning)} unless it is paid."
        return Banner("warn", text, link="/billing/", link_text="Update payment")
    if dunning.status == DunningStage.SENDING_PAUSED:
        text = "Your payment is overdue: campaign sending is paused until it is paid."
    else:
        text = "Your payment is overdue: sending is paused and your servers are stopped."
    return Banner("danger", text, link="/billing/", link_text="Pay now")
