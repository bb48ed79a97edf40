"""Automatic protection's records (docs/inbound.md, "Automatic protection"): the judgement of a
window's figures against the PROTECTION_* settings, the per-object state (`ProtectionState`)
and its events (`ProtectionEvent`). No pausing here: `deliverability.services.protection`
(mailboxes, domains) and `campaigns.services.protection` (campaigns) pause; the resume services
call `acknowledge`, so the figures a person has seen never pause the object again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from deliverability.models import (
    ProtectedKind,
    ProtectionAction,
    ProtectionEvent,
    ProtectionLevel,
    ProtectionState,
)
from deliverability.services.sender_stats import SenderFigures, totals_since
from penguinmails.alerts import resolve_alert

# The alert engine's rule of a mailbox or domain that protection paused (resolved on resume).
PAUSED_ALERT = "protection.paused"

_RANK = {ProtectionLevel.OK: 0, ProtectionLevel.FLAGGED: 1, ProtectionLevel.PAUSED: 2}


@dataclass(frozen=True)
class Verdict:
    """What a window's figures call for: a level, the metric behind it and its rate."""

    level: ProtectionLevel
    metric: str = ""
    rate: float | None = None
    limit_bp: int = 0

    def reason(self, figures: SenderFigures, start: dt.date) -> str:
        if self.level == ProtectionLevel.OK:
            return ""
        verb = "paused" if self.level == ProtectionLevel.PAUSED else "flagged"
        count = figures.bounced if self.metric == "bounce" else figures.complained
        base = figures.sends if self.metric == "bounce" else figures.sent
        return (
            f"Automatically {verb}: {self.metric} rate {100 * (self.rate or 0):.2f} % "
            f"({count} of {base} since {start.isoformat()}) passed {self.limit_bp / 100:g} %."
        )


def judge(figures: SenderFigures) -> Verdict | None:
    """None below PROTECTION_MIN_SENDS sends; else the worst level either rate reaches (a
    threshold is passed when the rate is above it)."""
    if figures.sends < settings.PROTECTION_MIN_SENDS:
        return None
    bounce, complaint = (figures.bounced, figures.sends), (figures.complained, figures.sent)
    checks = [
        ("bounce", *bounce, settings.PROTECTION_BOUNCE_PAUSE_BP, True),
        ("complaint", *complaint, settings.PROTECTION_COMPLAINT_PAUSE_BP, True),
        ("bounce", *bounce, settings.PROTECTION_BOUNCE_FLAG_BP, False),
        ("complaint", *complaint, settings.PROTECTION_COMPLAINT_FLAG_BP, False),
    ]
    for metric, count, base, limit_bp, pause in checks:
        # count/base > limit_bp/10000, in integers (no float rounding at the line).
        if base and count * 10000 > limit_bp * base:
            level = ProtectionLevel.PAUSED if pause else ProtectionLevel.FLAGGED
            return Verdict(level, metric, round(count / base, 4), limit_bp)
    return Verdict(ProtectionLevel.OK)


def window_start(today: dt.date, state: ProtectionState | None) -> dt.date:
    start = today - dt.timedelta(days=settings.PROTECTION_WINDOW_DAYS - 1)
    if state is not None and state.baseline.get("day"):
        start = max(start, dt.date.fromisoformat(state.baseline["day"]))
    return start


def window_figures(
    daily: Mapping[dt.date, SenderFigures], start: dt.date, state: ProtectionState | None
) -> SenderFigures:
    """The sums of the days from `start`, less what a resume acknowledged on its day."""
    total = SenderFigures()
    base = (state.baseline if state is not None else {}) or {}
    for day, f in daily.items():
        if day < start:
            continue
        for name in ("sent", "bounced", "complained", "replied"):
            value = getattr(f, name)
            if base.get("day") == day.isoformat():
                value = max(0, value - int(base.get(name, 0)))
            setattr(total, name, getattr(total, name) + value)
    return total


def state_of(kind: ProtectedKind, object_id: int, *, lock: bool = False) -> ProtectionState:
    rows = ProtectionState.objects.select_for_update() if lock else ProtectionState.objects
    state, _ = rows.get_or_create(kind=kind, object_id=object_id)
    return state


def escalates(state: ProtectionState, verdict: Verdict | None) -> bool:
    """Whether the verdict raises the object's level (a flag or pause is recorded once)."""
    if verdict is None:
        return False
    return _RANK[ProtectionLevel(verdict.level)] > _RANK[ProtectionLevel(state.level)]


def record(
    state: ProtectionState,
    verdict: Verdict,
    figures: SenderFigures,
    *,
    start: dt.date,
    label: str,
) -> ProtectionEvent:
    """Move the state to the verdict's level and record the event with its figures."""
    now = timezone.now()
    reason = verdict.reason(figures, start)
    state.level = verdict.level
    state.reason = reason
    state.figures = {**figures.as_dict(), "sends": figures.sends, "since": start.isoformat()}
    state.since = now
    state.save(update_fields=["level", "reason", "figures", "since"])
    return ProtectionEvent.objects.create(
        kind=state.kind,
        object_id=state.object_id,
        label=label[:320],
        action=ProtectionAction(verdict.level),
        metric=verdict.metric,
        rate=verdict.rate,
        sends=figures.sends,
        bounced=figures.bounced,
        complained=figures.complained,
        window_start=start,
        reason=reason,
        at=now,
    )


def clear_flag(state: ProtectionState) -> None:
    """Figures back under the flag lines: the flag goes (a pause stays until resumed)."""
    if state.level == ProtectionLevel.FLAGGED:
        state.level = ProtectionLevel.OK
        state.reason = ""
        state.save(update_fields=["level", "reason"])


def acknowledge(
    kind: ProtectedKind, object_id: int, *, label: str, today: SenderFigures, actor: str = ""
) -> ProtectionEvent | None:
    """A person resumed the object: later evaluations count only what comes after (the day's
    counts so far are the baseline, earlier days leave the window). Records a `resumed` event
    when protection had paused or flagged it."""
    state = state_of(kind, object_id, lock=True)
    was = state.level
    state.level = ProtectionLevel.OK
    state.reason = ""
    state.since = timezone.now()
    state.baseline = {
        "day": timezone.now().date().isoformat(),
        "sent": today.sent,
        "bounced": today.bounced,
        "complained": today.complained,
        "replied": today.replied,
    }
    state.save(update_fields=["level", "reason", "since", "baseline"])
    if was == ProtectionLevel.OK:
        return None
    note = f"resumed by {actor or 'the system'}"
    resolve_alert(PAUSED_ALERT, alert_subject(kind, object_id), note=note)
    return ProtectionEvent.objects.create(
        kind=kind,
        object_id=object_id,
        label=label[:320],
        action=ProtectionAction.RESUMED,
        reason=f"Resumed by {actor or 'the system'} (was {was}); earlier figures acknowledged.",
        actor=actor[:254],
    )


def alert_subject(kind: ProtectedKind, object_id: int) -> str:
    """The alert engine's subject of a paused mailbox or domain of the current tenant."""
    schema = getattr(connection, "schema_name", "")  # django-tenants' wrapper sets it
    return f"{kind}:{schema}:{object_id}"


def states_for(kind: ProtectedKind, ids: list[int]) -> dict[int, ProtectionState]:
    """The non-OK states of these objects, for pages and serializers (one query)."""
    rows = ProtectionState.objects.filter(kind=kind, object_id__in=ids).exclude(
        level=ProtectionLevel.OK
    )
    return {s.object_id: s for s in rows}


def acknowledge_mailbox(mailbox_id: int, *, label: str, actor: str) -> ProtectionEvent | None:
    """Called by the mailbox's resume: later evaluations count only sends after it."""
    today = timezone.now().date()
    figures = totals_since("mailbox_id", mailbox_id, today).get(today) or SenderFigures()
    return acknowledge(ProtectedKind.MAILBOX, mailbox_id, label=label, today=figures, actor=actor)
