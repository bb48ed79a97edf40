"""The alert engine's writes: open (or refresh), acknowledge, resolve, and evaluate the periodic
rules. The only writer of the `alerts` table (tests/test_table_owners.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from penguinmails import states
from penguinmails.alerts import channels
from penguinmails.alerts.models import OPEN_STATES, Alert, AlertState, Severity
from penguinmails.alerts.rules import Finding, registered_rules
from penguinmails.errors import IllegalTransition, NotFound

log = logging.getLogger(__name__)


def _open_rows(rule: str, subject: str) -> QuerySet[Alert]:
    return Alert.objects.filter(rule=rule, subject=subject, state__in=OPEN_STATES)


def _refresh(
    alert: Alert, *, summary: str, severity: str, detail: dict[str, Any], now: datetime
) -> Alert:
    changes = {"summary": summary[:500], "severity": severity, "detail": detail}
    Alert.objects.filter(pk=alert.pk).update(last_seen_at=now, updated_at=now, **changes)
    for name, value in {**changes, "last_seen_at": now}.items():
        setattr(alert, name, value)
    return alert


def raise_alert(
    rule: str,
    subject: str,
    *,
    summary: str,
    severity: Severity | str = Severity.WARNING,
    detail: dict[str, Any] | None = None,
    tenant_schema: str | None = None,
    now: datetime | None = None,
    email_staff: bool = True,
) -> Alert:
    """Open the one open alert of (rule, subject), or refresh it if it is open already. Staff
    (email, webhook) are told on open only, after commit. `email_staff=False` when the caller
    emails staff itself with its own message (blocklist listings): the webhook and the banners
    still tell."""
    now = now or timezone.now()
    severity = Severity(severity)
    detail = dict(detail or {})
    with transaction.atomic():
        alert = _open_rows(rule, subject).select_for_update().first()
        if alert is not None:
            return _refresh(alert, summary=summary, severity=severity, detail=detail, now=now)
        try:
            # A savepoint: two openers racing meet on the partial unique constraint.
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule,
                    subject=subject,
                    summary=summary[:500],
                    severity=severity,
                    detail=detail,
                    tenant_schema=tenant_schema or "",
                    opened_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            alert = _open_rows(rule, subject).select_for_update().get()
            return _refresh(alert, summary=summary, severity=severity, detail=detail, now=now)
        states.note(alert, reason=f"opened: {summary}"[:1000])
        channels.announce(alert, email_staff=email_staff)
    return alert


def resolve_alert(rule: str, subject: str, *, note: str = "", now: datetime | None = None) -> bool:
    """Resolve the open alert of (rule, subject). True if there was one."""
    moved = states.transition(
        _open_rows(rule, subject),
        AlertState.RESOLVED,
        reason=note or "resolved",
        resolved_at=now or timezone.now(),
        resolution=note[:500],
    )
    return bool(moved)


def acknowledge_alert(alert_id: int, *, actor: Any = None) -> Alert:
    """A person has seen it: firing -> acknowledged. NotFound for an unknown id, IllegalTransition
    when it is acknowledged or resolved already."""
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    user = actor if getattr(actor, "pk", None) is not None else None
    return states.transition(
        alert,
        AlertState.ACKNOWLEDGED,
        reason="acknowledged",
        actor=actor,
        acknowledged_at=timezone.now(),
        acknowledged_by=user,
    )


def evaluate_rules(now: datetime | None = None) -> dict[str, int]:
    """Run every registered rule: open what it finds, resolve its open alerts it no longer finds.
    A rule that fails is logged and leaves its alerts as they are (a broken check resolves
    nothing). Returns the number of findings per rule (-1 for a failed rule)."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for rule in registered_rules():
        try:
            with transaction.atomic():
                findings = list(rule.func(now))
                _apply(rule.name, findings, now)
        except Exception:
            log.exception("alert rule %s failed", rule.name)
            counts[rule.name] = -1
            continue
        counts[rule.name] = len(findings)
    return counts


def _apply(rule: str, findings: Iterable[Finding], now: datetime) -> None:
    seen = set()
    for finding in findings:
        seen.add(finding.subject)
        raise_alert(
            rule,
            finding.subject,
            summary=finding.summary,
            severity=finding.severity,
            detail=finding.detail,
            tenant_schema=finding.tenant_schema,
            now=now,
        )
    cleared = Alert.objects.filter(rule=rule, state__in=OPEN_STATES).exclude(subject__in=seen)
    if cleared.exists():
        states.transition(cleared, AlertState.RESOLVED, reason="condition cleared", resolved_at=now)


def open_alerts(*, tenant_schema: str | None = None) -> QuerySet[Alert]:
    """Open alerts, most severe and newest first; one tenant's only when a schema is given."""
    rows = Alert.objects.filter(state__in=OPEN_STATES)
    if tenant_schema is not None:
        rows = rows.filter(tenant_schema=tenant_schema)
    return rows.order_by("-state", "-opened_at", "-id")  # firing before acknowledged


def open_alerts_for_tenant(schema: str) -> list[Alert]:
    """What the tenant's dashboard banner shows: its tenant-level open alerts."""
    if not schema:
        return []
    return list(open_alerts(tenant_schema=schema)[:20])


__all__ = [
    "IllegalTransition",
    "acknowledge_alert",
    "evaluate_rules",
    "open_alerts",
    "open_alerts_for_tenant",
    "raise_alert",
    "resolve_alert",
]
