"""Due selection (docs/sending.md, "Scheduling"): a scheduler run turns due enrollments into
queued messages inside the run's caps (`pacing.capacity`) and each lead's sending window.

Due enrollments are picked PICK_CHUNK at a time (FOR UPDATE SKIP LOCKED). A lead outside its
window moves to its window's next opening; a lead inside gets a Message (INSERT ... ON CONFLICT
(campaign, lead, step) DO NOTHING: the unique constraint is the exactly-once guarantee), a
variant chosen by weight (seeded by campaign, lead and step), a mailbox in rotation and a slot
spaced from that mailbox's previous one by a random gap; its enrollment's next_due_at becomes
NULL (in flight). An enrollment past its last step finishes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.models import (
    Campaign,
    EnrollmentStatus,
    MessageStatus,
    SequenceStep,
    StepVariant,
)
from campaigns.schedule import Window, is_within_window, next_window_start
from campaigns.sending.pacing import Capacity, MailboxSlot
from campaigns.sending.sql import chunks, execute, fetch, update_from_values, values

# Messages are created at most this far ahead of their slot: a pause, a limit change or a
# mailbox failure then affects little already queued, and in-flight rows stay few.
HORIZON = timedelta(minutes=10)
PICK_CHUNK = 2_000


@dataclass
class Scheduled:
    """What due selection did in one run (copied into the scheduler's CampaignReport)."""

    scheduled: int = 0
    deferred: int = 0  # outside their window: moved to its next opening
    finished: int = 0
    limited_by: str = ""


class Windows:
    """Whether a lead's sending window is open now, per timezone (cached for one run)."""

    def __init__(self, campaign: Campaign, now: datetime) -> None:
        self.campaign, self.now = campaign, now
        self.window = Window(
            frozenset(campaign.window_days), campaign.window_start, campaign.window_end
        )
        self._open: dict[str, tuple[bool, datetime]] = {}

    def zone_of(self, lead_tz: str) -> str:
        """The lead's timezone when the campaign uses it and it is valid, else the campaign's."""
        if self.campaign.use_lead_timezone and lead_tz:
            try:
                ZoneInfo(lead_tz)
            except (KeyError, ValueError):
                return self.campaign.timezone
            return lead_tz
        return self.campaign.timezone

    def open(self, tz: str) -> tuple[bool, datetime]:
        """(inside the window now, its end today) or (False, its next opening)."""
        cached = self._open.get(tz)
        if cached is None:
            if is_within_window(self.now, self.window, tz):
                zone = ZoneInfo(tz)
                local_day = self.now.astimezone(zone).date()
                end = datetime.combine(local_day, self.window.end, tzinfo=zone).astimezone(UTC)
                cached = (True, end)
            else:
                cached = (False, next_window_start(self.now, self.window, tz))
            self._open[tz] = cached
        return cached


class Rotation:
    """The campaign's mailboxes in round robin, from where the last message left off."""

    def __init__(self, slots: list[MailboxSlot], gap: Callable[[], timedelta]) -> None:
        self.slots, self.gap, self.turn = slots, gap, 0

    def __bool__(self) -> bool:
        return bool(self.slots)

    def take(self, before: datetime) -> MailboxSlot | None:
        """The next mailbox whose next slot comes before `before` (the horizon or the lead's
        window end), or None."""
        n = len(self.slots)
        for offset in range(n):
            candidate = self.slots[(self.turn + offset) % n]
            if candidate.cursor < before:
                self.turn = (self.turn + offset + 1) % n
                return candidate
        return None

    def used(self, slot: MailboxSlot) -> None:
        """One message went to `slot`: its cursor moves by a gap; a full mailbox leaves."""
        slot.cursor = slot.cursor + self.gap()
        slot.remaining -= 1
        if slot.remaining <= 0:
            self.slots.remove(slot)
            self.turn = self.turn % len(self.slots) if self.slots else 0


@dataclass
class _Chunk:
    """One picked chunk's outcome, written in four statements."""

    messages: list[tuple[Any, ...]] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    deferred: list[tuple[int, datetime]] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    full: bool = False  # the run's limit or its mailboxes ran out


class DueSelection:
    """One run's due selection over one locked, running campaign."""

    def __init__(
        self, campaign: Campaign, *, now: datetime, capacity: Capacity, windows: Windows,
        gap: Callable[[], timedelta],
    ) -> None:  # fmt: skip
        self.campaign, self.now, self.capacity, self.windows = campaign, now, capacity, windows
        self.rotation = Rotation(capacity.slots, gap)
        self.limit = capacity.limit
        self.horizon = now + HORIZON
        self.created = 0
        self.result = Scheduled()
        self.steps = {s.order: s for s in SequenceStep.objects.filter(campaign=campaign)}
        self.variants: dict[int, list[StepVariant]] = {}
        for variant in StepVariant.objects.filter(step__campaign=campaign).order_by("id"):
            self.variants.setdefault(variant.step_id, []).append(variant)

    def run(self) -> Scheduled:
        if self.limit <= 0:
            self.result.limited_by = self.capacity.exhausted()
            return self.result
        while self.created < self.limit:
            picked = self._pick()
            if not picked:
                break
            chunk = self._place(picked)
            self._write(chunk)
            if chunk.full or len(picked) < PICK_CHUNK or not self._progressed(chunk):
                if self.created >= self.limit:
                    self.result.limited_by = self.result.limited_by or self.capacity.reached(
                        self.limit
                    )
                break
        return self.result

    @staticmethod
    def _progressed(chunk: _Chunk) -> bool:
        return bool(chunk.messages or chunk.deferred or chunk.finished)

    def _pick(self) -> list[tuple[Any, ...]]:
        return fetch(
            """
            SELECT e.id, e.lead_id, e.next_step, l.email, l.timezone
            FROM campaigns_campaignlead e JOIN campaigns_lead l ON l.id = e.lead_id
            WHERE e.campaign_id = %s AND e.status = %s AND e.next_due_at <= %s
            ORDER BY e.next_due_at, e.id
            LIMIT %s
            FOR UPDATE OF e SKIP LOCKED
            """,
            [self.campaign.pk, EnrollmentStatus.ACTIVE.value, self.now, PICK_CHUNK],
        )

    def _place(self, picked: list[tuple[Any, ...]]) -> _Chunk:
        chunk = _Chunk()
        for enrollment_id, lead_id, order, email, lead_tz in picked:
            step = self.steps.get(order)
            if step is None or not self.variants.get(step.pk):
                chunk.finished.append(enrollment_id)
                continue
            inside, moment = self.windows.open(self.windows.zone_of(lead_tz))
            if not inside:
                chunk.deferred.append((enrollment_id, moment))
                continue
            if chunk.full or self.created >= self.limit or not self.rotation:
                chunk.full = True
                continue
            slot = self.rotation.take(min(self.horizon, moment))
            if slot is None:
                continue  # no slot before this lead's window closes: stays due
            variant = self._variant(step, lead_id, order)
            chunk.messages.append(
                (step.pk, variant.pk, lead_id, slot.mailbox_id, email, slot.cursor)
            )
            chunk.in_flight.append(enrollment_id)
            self.rotation.used(slot)
            self.created += 1
        return chunk

    def _variant(self, step: SequenceStep, lead_id: int, order: int) -> StepVariant:
        options = self.variants[step.pk]
        seeded = random.Random(f"{self.campaign.pk}:{lead_id}:{order}")
        return seeded.choices(options, weights=[v.weight for v in options])[0]

    def _write(self, chunk: _Chunk) -> None:
        self.result.scheduled += _insert_messages(self.campaign.pk, chunk.messages, self.now)
        _set_due(chunk.deferred)
        self.result.deferred += len(chunk.deferred)
        if chunk.in_flight:
            execute(
                "UPDATE campaigns_campaignlead SET next_due_at = NULL, updated_at = %s "
                "WHERE id = ANY(%s)",
                [self.now, chunk.in_flight],
            )
        if chunk.finished:
            execute(
                "UPDATE campaigns_campaignlead SET status = %s, next_due_at = NULL, "
                "updated_at = %s WHERE id = ANY(%s)",
                [EnrollmentStatus.FINISHED.value, self.now, chunk.finished],
            )
            self.result.finished += len(chunk.finished)


def _insert_messages(campaign_id: int, rows: list[tuple[Any, ...]], now: datetime) -> int:
    inserted = 0
    for part in chunks(rows, 1000):
        body, params = values(
            [(*row, now) for row in part],
            ["bigint", "bigint", "bigint", "bigint", "text", "timestamptz", "timestamptz"],
        )
        inserted += execute(
            f"""
            INSERT INTO campaigns_message
                (campaign_id, step_id, variant_id, lead_id, mailbox_id, to_email, status, subject,
                 scheduled_for, attempts, stopped_by, stop_reason, smtp_response, open_count,
                 click_count, machine_open_count, machine_click_count, created_at, updated_at)
            SELECT %s, v.step_id, v.variant_id, v.lead_id, v.mailbox_id, v.to_email, %s, '',
                   v.scheduled_for, 0, '', '', '', 0, 0, 0, 0, v.now, v.now
            FROM ({body}) AS v(step_id, variant_id, lead_id, mailbox_id, to_email,
                                scheduled_for, now)
            ON CONFLICT (campaign_id, lead_id, step_id) DO NOTHING
            """,  # noqa: S608 - the VALUES list is placeholders only
            [campaign_id, MessageStatus.QUEUED.value, *params],
        )
    return inserted


def _set_due(rows: list[tuple[int, datetime]]) -> None:
    if rows:
        update_from_values(
            "campaigns_campaignlead",
            rows,
            [("id", "bigint"), ("due", "timestamptz")],
            "next_due_at = v.due, updated_at = now()",
        )


__all__ = ["HORIZON", "PICK_CHUNK", "DueSelection", "Rotation", "Scheduled", "Windows"]
