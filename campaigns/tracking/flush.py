"""Moving buffered tracking events from Redis into the tenants' schemas (the `tracking.flush`
job, every 2 s; docs/tracking.md).

A batch is written in ONE PostgreSQL transaction across every tenant in it (schemas of one
database; the search_path is switched between tenants), so it is all in or all out: if PostgreSQL
is down or the write fails, the batch stays in Redis's processing list and the next flush writes
it again, nothing lost and nothing doubled. Per tenant: the opens and clicks become MessageEvent
rows (one bulk INSERT), each message's counters and first human open/click move with one
conditional UPDATE whose RETURNING says which firsts are new, and the rollups get one `bump`.
Buffered unsubscribes (taken while PostgreSQL was down) go through `unsubscribe_message`.

Events for a tenant or message that no longer exists are dropped and counted in
`tracking:dropped`. A batch that fails for another reason than a lost database connection
MAX_ATTEMPTS times is moved to `tracking:dead` instead of blocking the buffer.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django_tenants.utils import schema_context

from campaigns import webhook_events
from campaigns.models import EventKind, Message, MessageEvent
from campaigns.services import stats
from campaigns.tracking import buffer, machine
from campaigns.tracking.buffer import CLICK, OPEN, UNSUBSCRIBE, Event
from campaigns.tracking.unsubscribe import UnknownMessage, unsubscribe_message
from penguinmails.queue import live
from tenants.db import TenantConnection
from tenants.models import Tenant

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
LOCK_SECONDS = 120
# Errors that mean "PostgreSQL is unreachable": retried for as long as it takes.
UNREACHABLE = (OperationalError, InterfaceError)


@dataclass
class FlushResult:
    batches: int = 0
    events: int = 0
    written: int = 0
    dropped: int = 0
    buried: int = 0
    locked: bool = False  # another flusher was at work; this one did nothing
    counts: dict[str, int] = field(default_factory=dict)


def flush(*, max_batches: int = 50, batch_size: int | None = None) -> FlushResult:
    """Write buffered events until the buffer is empty (or `max_batches` batches). Raises the
    database error when PostgreSQL is unreachable (the batch stays buffered)."""
    size = batch_size or settings.TRACKING_FLUSH_BATCH
    claim = buffer.Claim(live.client(), LOCK_SECONDS)
    result = FlushResult()
    if not claim.acquire():
        result.locked = True
        return result
    try:
        for _ in range(max_batches):
            items = claim.next_batch(size)
            if not items:
                break
            try:
                written, dropped = write_batch(items)
            except UNREACHABLE:
                claim.failed_attempt()
                raise
            except Exception:
                attempts = claim.failed_attempt()
                if attempts < MAX_ATTEMPTS:
                    raise
                result.buried += claim.bury()
                log.exception("tracking: batch failed %s times, moved to %s", attempts,
                              buffer.DEAD_KEY)  # fmt: skip
                continue
            claim.ack()
            buffer.count_dropped(dropped)
            result.batches += 1
            result.events += len(items)
            result.written += written
            result.dropped += dropped
            claim.extend()
    finally:
        claim.release()
    return result


def write_batch(items: list[bytes]) -> tuple[int, int]:
    """Apply one batch (oldest first) in one transaction. Returns (written, dropped)."""
    by_tenant: dict[int, list[Event]] = defaultdict(list)
    dropped = 0
    for raw in items:
        event = Event.decode(raw)
        if event is None:
            dropped += 1
        else:
            by_tenant[event.tenant_id].append(event)
    schemas = dict(Tenant.objects.filter(pk__in=list(by_tenant)).values_list("pk", "schema_name"))
    written = 0
    try:
        with transaction.atomic():
            for tenant_id, events in sorted(by_tenant.items()):
                schema = schemas.get(tenant_id)
                if schema is None:
                    dropped += len(events)
                    continue
                with schema_context(schema):
                    w, d = _write_tenant(events)
                written += w
                dropped += d
    finally:
        cast(TenantConnection, connection).set_schema_to_public()
    return written, dropped


def _dt(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text)) if text else None
    except ValueError:
        return None


@dataclass
class _Tally:
    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    machine_clicks: int = 0
    first_open: float | None = None  # human (a human click counts as an open too)
    first_click: float | None = None
    first_machine_open: float | None = None
    first_machine_click: float | None = None


def _min(a: float | None, b: float) -> float:
    return b if a is None or b < a else a


def _write_tenant(events: list[Event]) -> tuple[int, int]:
    rows = {
        pk: (campaign, step, variant, sent)
        for pk, campaign, step, variant, sent in Message.objects.filter(
            pk__in={e.message_pk for e in events}
        ).values_list("pk", "campaign_id", "step_id", "variant_id", "sent_at")
    }
    dropped = 0
    new_events: list[MessageEvent] = []
    tallies: dict[int, _Tally] = defaultdict(_Tally)
    for event in events:
        row = rows.get(event.message_pk)
        if row is None:
            dropped += 1
            continue
        campaign_id, _step, _variant, sent_at = row
        if event.kind == UNSUBSCRIBE:
            try:
                unsubscribe_message(event.message_pk, at=_dt(event.at), source="link, buffered",
                                    ip=_ip(event.ip), user_agent=event.user_agent)  # fmt: skip
            except UnknownMessage:
                dropped += 1
            continue
        reason = machine.classify(
            event.kind,
            user_agent=event.user_agent,
            ip=event.ip,
            head=event.head,
            at=event.at,
            sent_at=sent_at.timestamp() if sent_at else None,
        )
        new_events.append(
            MessageEvent(
                message_id=event.message_pk,
                campaign_id=campaign_id,
                kind=EventKind.OPEN if event.kind == OPEN else EventKind.CLICK,
                at=_dt(event.at),
                is_machine=bool(reason),
                machine_reason=reason[:100],
                url=event.url if event.kind == CLICK else "",
                ip=_ip(event.ip),
                user_agent=event.user_agent[:500],
            )
        )
        tally = tallies[event.message_pk]
        if event.kind == OPEN and reason:
            tally.machine_opens += 1
            tally.first_machine_open = _min(tally.first_machine_open, event.at)
        elif event.kind == OPEN:
            tally.opens += 1
            tally.first_open = _min(tally.first_open, event.at)
        elif reason:
            tally.machine_clicks += 1
            tally.first_machine_click = _min(tally.first_machine_click, event.at)
        else:
            tally.clicks += 1
            tally.first_click = _min(tally.first_click, event.at)
            tally.first_open = _min(tally.first_open, event.at)
    MessageEvent.objects.bulk_create(new_events, batch_size=1000)
    webhook_events.tracking(new_events)
    bumps = _update_messages(tallies, rows)
    stats.bump(bumps)
    return len(new_events), dropped


def _update_messages(
    tallies: dict[int, _Tally], rows: dict[int, tuple[int, int, int, dt.datetime | None]]
) -> list[stats.Bump]:
    """One UPDATE for every message of the batch. The `old` CTE reads (and locks) the rows as
    they were, so RETURNING can say which first open/click this batch set: those are the unique
    opens and clicks of the rollups. Machine ones count once per message too (first one)."""
    if not tallies:
        return []
    values: list[int | dt.datetime | None] = []
    placeholders = []
    for pk, t in tallies.items():
        placeholders.append(
            "(%s::bigint, %s::int, %s::int, %s::int, %s::int, %s::timestamptz, %s::timestamptz)"
        )
        values += [pk, t.opens, t.machine_opens, t.clicks, t.machine_clicks,
                   _dt(t.first_open) if t.first_open else None,
                   _dt(t.first_click) if t.first_click else None]  # fmt: skip
    sql = f"""
        WITH v (id, opens, mopens, clicks, mclicks, first_open, first_click) AS (
            VALUES {", ".join(placeholders)}
        ), old AS (
            SELECT m.id, m.first_opened_at, m.first_clicked_at, m.machine_open_count,
                   m.machine_click_count
            FROM campaigns_message m JOIN v ON v.id = m.id
            ORDER BY m.id
            FOR UPDATE OF m
        )
        UPDATE campaigns_message AS m SET
            open_count = m.open_count + v.opens,
            machine_open_count = m.machine_open_count + v.mopens,
            click_count = m.click_count + v.clicks,
            machine_click_count = m.machine_click_count + v.mclicks,
            first_opened_at = COALESCE(m.first_opened_at, v.first_open),
            first_clicked_at = COALESCE(m.first_clicked_at, v.first_click),
            updated_at = now()
        FROM v JOIN old ON old.id = v.id
        WHERE m.id = v.id
        RETURNING m.id,
            old.first_opened_at IS NULL AND v.first_open IS NOT NULL,
            old.first_clicked_at IS NULL AND v.first_click IS NOT NULL,
            old.machine_open_count = 0 AND v.mopens > 0,
            old.machine_click_count = 0 AND v.mclicks > 0
    """  # noqa: S608 - only placeholders are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        returned = cursor.fetchall()
    bumps = []
    for pk, new_open, new_click, new_mopen, new_mclick in returned:
        campaign, step, variant, _sent = rows[pk]
        t = tallies[pk]
        firsts = (
            (new_open, t.first_open, "opened"),
            (new_click, t.first_click, "clicked"),
            (new_mopen, t.first_machine_open, "machine_opened"),
            (new_mclick, t.first_machine_click, "machine_clicked"),
        )
        for is_new, at, counter in firsts:
            if is_new and at is not None:
                bumps.append(stats.Bump(campaign, step, variant, _dt(at).date(), counter))
    return bumps


def run() -> FlushResult:
    """The job's body: flush, and log what happened when anything did."""
    started = time.monotonic()
    result = flush()
    if result.events or result.buried:
        log.info(
            "tracking: %s events in %s batches (%s written, %s dropped, %s buried) in %.0f ms",
            result.events, result.batches, result.written, result.dropped, result.buried,
            (time.monotonic() - started) * 1000,
        )  # fmt: skip
    return result
