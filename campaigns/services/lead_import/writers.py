"""Writing the batches: one transaction each, two connections at once, commits in order."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django_tenants.utils import tenant_context

from campaigns.models import (
    DuplicatePolicy,
    ImportStatus,
    LeadImport,
    RowOutcome,
)
from campaigns.services.lead_import.reader import Batch, BatchReader
from campaigns.services.lead_import.rows import Problem
from campaigns.services.lead_import.sql import (
    _ADD_TO_LIST,
    _INSERT_SKIP,
    _UPSERT_UPDATE,
    _stage,
    _take_out_suppressed,
    _write_problems,
)
from campaigns.services.leads import (
    ImportTakenOver,
)
from tenants.models import Tenant

_STARTED, _UPSERTED = 1, 2  # how far a batch's transaction has gone (`_CommitOrder.level`)


@dataclass
class Counts:
    """What a committed batch moved: `processed` and the outcome counts."""

    rows: int
    created: int
    updated: int
    skipped: int
    failed: int

    def add_to(self, lead_import: LeadImport) -> None:
        lead_import.processed += self.rows
        lead_import.created += self.created
        lead_import.updated += self.updated
        lead_import.skipped += self.skipped
        lead_import.failed += self.failed


class _Abandoned(Exception):
    """An earlier batch of this run failed: this one rolls back (the earlier error is raised)."""


class _CommitOrder:
    """Two writers, batches alternating between them, commits in batch order.

    Each batch's transaction holds an advisory lock numbered for it from its first statement;
    before it commits, batch N+1 waits for batch N's lock, i.e. for batch N's transaction to
    end: a wait PostgreSQL sees, so any cycle through it (with a third transaction, say) is
    found by the deadlock detector (40P01, `_write_batches` retries) rather than hanging both
    threads. Then it checks under the import row's lock that `processed` is where N left it
    (N rolled back: it is not). Batch N+1 also starts its lead upsert only once batch N's has
    finished: N then never waits for N+1 (N+1 may wait for N's uncommitted rows, as a later
    transaction would, and sees them once N commits), so the two cannot deadlock each other
    (sorting the rows instead and letting the upserts overlap was slower: 17.2 s a million
    against 16.2-16.5). The waits in Python are only for the other thread's progress up to a
    point that needs nothing of this one, and end when an earlier batch fails.
    """

    def __init__(self, cond: threading.Condition, *, key: int, first: int) -> None:
        self.cond = cond
        self.key = key
        self.first = first
        self.level: dict[int, int] = {first - 1: _UPSERTED}
        self.errors: dict[int, BaseException] = {}
        self.failed_at: int | None = None
        self.counts: dict[int, Counts] = {}  # committed, not yet reported
        self.open: dict[int, Batch] = {}  # taken, not committed

    def stopped(self, seq: int) -> bool:
        """An earlier batch failed: `seq` must not commit. Called under `cond`."""
        return self.failed_at is not None and self.failed_at < seq

    def fail(self, seq: int, exc: BaseException) -> None:
        with self.cond:
            self.errors.setdefault(seq, exc)
            self.failed_at = seq if self.failed_at is None else min(self.failed_at, seq)
            self.cond.notify_all()

    def reached(self, seq: int, level: int) -> None:
        with self.cond:
            self.level[seq] = max(level, self.level.get(seq, 0))
            self.cond.notify_all()

    def wait(self, seq: int, level: int) -> None:
        """Until batch seq - 1 has reached `level`."""
        with self.cond:
            while self.level.get(seq - 1, 0) < level:
                if self.stopped(seq):
                    raise _Abandoned
                self.cond.wait()

    def begin(self, cursor: Any, seq: int) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [self.key, seq])
        self.reached(seq, _STARTED)

    def before_commit(self, cursor: Any, seq: int) -> None:
        if seq > self.first:
            self.wait(seq, _STARTED)  # its lock is taken: waiting for it waits for its end
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [self.key, seq - 1])
        with self.cond:
            if self.stopped(seq):
                raise _Abandoned

    def committed(self, seq: int, counts: Counts) -> None:
        with self.cond:
            self.counts[seq] = counts
            self.open.pop(seq, None)

    def first_error(self) -> BaseException | None:
        with self.cond:
            return self.errors[min(self.errors)] if self.errors else None


def _deadlocked(exc: BaseException) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "40P01"


def _write_batches(
    lead_import: LeadImport,
    *,
    tenant: Tenant,
    size: int,
    report: Callable[[Counts], None],
) -> None:
    """Write every batch, two at a time when there are several (`_CommitOrder`). The batches
    that a deadlock stopped (one, and the one beside it, rolled back with it) are read again
    and written once more, one after the other on the job's connection, before the rest."""
    alone_until, retried = lead_import.processed, False  # the rows to write one batch at a time
    while True:
        with BatchReader(lead_import, size=size) as reader:
            seq = 0
            while lead_import.processed < alone_until:
                if (batch := reader.take(seq)) is None:
                    return
                report(_write_batch(lead_import, batch))
                reader.written()
                seq += 1
            key = _lock_key(tenant, lead_import)
            order = _CommitOrder(reader.cond, key=key, first=seq)
            _write_two_at_a_time(lead_import, reader, order, tenant=tenant, report=report)
        error = order.first_error()
        if error is None:
            return
        if retried or not _deadlocked(error):
            raise error
        with order.cond:
            stopped = sum(batch.rows for batch in order.open.values())
        retried, alone_until = True, lead_import.processed + max(1, stopped)


def _lock_key(tenant: Tenant, lead_import: LeadImport) -> int:
    return zlib.crc32(f"{tenant.schema_name}:{lead_import.pk}".encode()) - 2**31


def _write_two_at_a_time(
    lead_import: LeadImport,
    reader: BatchReader,
    order: _CommitOrder,
    *,
    tenant: Tenant,
    report: Callable[[Counts], None],
) -> None:
    """Batches order.first, +2, +4... on the job's connection and the others on a second one in
    a thread, until the last batch or a failure (kept in `order.errors`, the earliest batch's
    raised by the caller). Counts are reported in batch order, from this thread, as batches
    commit: after each of this thread's batches, every batch before it has committed."""
    helper = threading.Thread(
        target=_helper_writes,
        args=(lead_import, reader, order, tenant),
        name=f"lead-import-{lead_import.pk}-writer",
        daemon=True,
    )
    helper.start()
    seq = order.first
    reported = seq

    def report_committed() -> None:
        nonlocal reported
        while True:
            with order.cond:
                counts = order.counts.pop(reported, None)
            if counts is None:
                return
            report(counts)
            reported += 1

    try:
        while (batch := reader.take(seq, give_up=order.stopped)) is not None:
            _write_ordered(lead_import, batch, order)
            reader.written()
            report_committed()
            seq += 2
    except BaseException as exc:
        order.fail(seq, exc)
    finally:
        helper.join()
    report_committed()


def _helper_writes(
    lead_import: LeadImport, reader: BatchReader, order: _CommitOrder, tenant: Tenant
) -> None:
    """The second writer: this thread's own connection, set to the tenant's schema."""
    seq = order.first + 1
    try:
        with tenant_context(tenant):
            while (batch := reader.take(seq, give_up=order.stopped)) is not None:
                _write_ordered(lead_import, batch, order)
                reader.written()
                seq += 2
    except BaseException as exc:
        order.fail(seq, exc)
    finally:
        connection.close()


def _write_ordered(lead_import: LeadImport, batch: Batch, order: _CommitOrder) -> None:
    with order.cond:
        order.open[batch.seq] = batch
    order.committed(batch.seq, _write_batch(lead_import, batch, order=order))


def _upsert(
    cursor: Any, lead_import: LeadImport, *, update: bool, new: int
) -> tuple[int, set[str]]:
    """Write the staged leads (not suppressed: `new` of them) by the duplicate policy, and
    their list memberships; returns (leads created, addresses that already had a lead and were
    left alone)."""
    if update:
        # The list membership in the same statement, from the ids it returns.
        cursor.execute(_UPSERT_UPDATE, {"list": lead_import.lead_list_id})
        return cursor.fetchone()[0], set()
    cursor.execute(_INSERT_SKIP)
    existing = {email for (email,) in cursor.fetchall()}
    if lead_import.lead_list_id is not None:
        cursor.execute(_ADD_TO_LIST, [lead_import.lead_list_id])
    return new - len(existing), existing


def _skip_rows(
    batch: Batch,
    problems: list[Problem],
    *,
    suppressed: dict[str, str],
    existing: set[str],
    update: bool,
) -> int:
    """Add a SKIPPED problem for each valid row not written (suppressed, or under the skip
    policy a lead that exists or an earlier line of the batch); returns how many."""
    skipped = 0
    for line, email in zip(batch.lines, batch.emails, strict=True):
        if email in suppressed:
            skipped += 1
            problems.append((line, email, RowOutcome.SKIPPED, suppressed[email]))
        elif update:
            continue  # created (counted above) or updated (counted below)
        elif email in existing:
            skipped += 1
            reason = "duplicate: the lead exists"
            problems.append((line, email, RowOutcome.SKIPPED, reason))
        elif line in batch.repeats:
            skipped += 1
            reason = f"duplicate of line {batch.repeats[line]}"
            problems.append((line, email, RowOutcome.SKIPPED, reason))
    return skipped


def _write_batch(
    lead_import: LeadImport, batch: Batch, *, order: _CommitOrder | None = None
) -> Counts:
    """Write one prepared batch in one transaction and move the counts."""
    update = lead_import.duplicates == DuplicatePolicy.UPDATE
    problems = list(batch.problems)
    failed = len(problems)
    with transaction.atomic():
        try:
            with connection.cursor() as cursor:
                if order is not None:
                    order.begin(cursor, batch.seq)
                # A crash of the server may lose the last batches committed this way, but whole
                # (leads, error rows and `processed` are one transaction) and a re-run redoes
                # them from `processed`; `_finish` commits durably, which flushes every batch
                # before it.
                cursor.execute("SET LOCAL synchronous_commit = off")
                if order is not None:
                    # The foreign-key checks of the memberships (~0.25 s a batch) then run in
                    # the statements, beside the other writer, rather than at the commit, which
                    # waits for the batch before (16.2-16.5 s a million against 18.9-19.0 s).
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                _stage(cursor, batch.stage)
                batch.stage = []  # memory: a retry reads the batch again (`_write_batches`)
                suppressed = _take_out_suppressed(cursor)
                staged = batch.staged
                if order is not None:
                    order.wait(batch.seq, _UPSERTED)
                created, existing = _upsert(
                    cursor, lead_import, update=update, new=staged - len(suppressed)
                )
                if order is not None:
                    order.reached(batch.seq, _UPSERTED)
                skipped = _skip_rows(
                    batch, problems, suppressed=suppressed, existing=existing, update=update
                )
                updated = len(batch.lines) - skipped - created if update else 0
                _write_problems(cursor, lead_import.pk, problems)
                if order is not None:
                    order.before_commit(cursor, batch.seq)
            # Checked last, under the import row's lock: another run that wrote this batch
            # first, or (two writers) the batch before this one rolled back.
            # FOR NO KEY UPDATE: it still excludes another run, and leaves the other writer's
            # error rows free to check their foreign key (KEY SHARE) meanwhile.
            locked = LeadImport.objects.select_for_update(no_key=True).get(pk=lead_import.pk)
            if locked.processed != batch.start or locked.status != ImportStatus.RUNNING:
                raise ImportTakenOver
            LeadImport.objects.filter(pk=lead_import.pk).update(
                processed=F("processed") + batch.rows,
                created=F("created") + created,
                updated=F("updated") + updated,
                skipped=F("skipped") + skipped,
                failed=F("failed") + failed,
            )
        except BaseException as exc:
            if order is not None:
                # Before the rollback, which lets the next batch's `before_commit` through:
                # it then finds this batch failed.
                order.fail(batch.seq, exc)
            raise
    return Counts(batch.rows, created, updated, skipped, failed)
