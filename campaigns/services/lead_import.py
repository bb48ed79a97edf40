"""The CSV import job's work (docs/leads.md, "Import"): stream, validate, write in batches.

Reading and validation stream (memory stays flat whatever the file's size); each batch is then
written with a handful of set-based statements instead of one ORM object per row:

1. its valid rows, one per address (a repeated address within the batch is merged into the
   first, or skipped, by the duplicate policy), are COPied into a temporary staging table;
2. one DELETE ... RETURNING takes out the suppressed addresses and domains, with their reason;
3. one INSERT ... SELECT ... ON CONFLICT (email) creates the new leads and, by policy, merges
   into the existing ones (non-empty values win, custom fields merge, tags add up) or leaves
   them alone;
4. one INSERT ... SELECT adds the list memberships; the rows not imported are COPied into
   LeadImportError; the counts move.

All of it in one transaction, which checks last, under a lock on the import row, that
`processed` is where the batch starts: a re-run (a worker killed, the job re-queued) resumes
after the last committed batch, and two runs at once cannot both count a batch.

Reading, validation and the staging text run in a thread (`BatchReader`) ahead of the writes,
so Python and PostgreSQL work at once; and two connections write alternate batches at once
(the job's, and a second one in a thread), committing strictly in batch order (`_CommitOrder`):
`processed` only moves in order, so a crash leaves a prefix of whole batches, and a repeated
address in batch N+1 waits for batch N's commit and then finds its lead, as one writer would.
"""

from __future__ import annotations

import csv
import io
import itertools
import json.encoder
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django_tenants.utils import tenant_context

from campaigns.imports import (
    CUSTOM_PREFIX,
    UnusableFile,
    check_text,
    custom_key,
    iter_records,
)
from campaigns.models import (
    DuplicatePolicy,
    ImportStatus,
    Lead,
    LeadImport,
    LeadImportError,
    RowOutcome,
    Suppression,
    SuppressionReason,
)
from campaigns.services.leads import (
    DISPOSABLE_DOMAINS,
    MAX_CUSTOM_FIELDS,
    MAX_CUSTOM_VALUE,
    ROLE_LOCAL_PARTS,
    TEXT_FIELDS,
    ImportTakenOver,
    MxChecker,
    _in_schema,
    _reason,
    _time_zones,
    clean_lead,
    normalize_tags,
    plain_email,
)
from tenants.models import Tenant
from tenants.services.audit import record as audit

# A record is a list, one slot per staging column (a dataclass per row costs a second a million).
TEXT_NAMES = list(TEXT_FIELDS)  # first_name ... timezone
EMAIL, CUSTOM, TAGS, ROLE, DISPOSABLE, MX = 0, 8, 9, 10, 11, 12
Record = list[Any]
STAGE = "pm_lead_import_stage"
_TAGS_SEEN_LIMIT = 10_000
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_COLUMNS = [
    "email",
    *TEXT_NAMES,
    "custom_fields",
    "tags",
    "is_role_address",
    "is_disposable",
    "mx_ok",
]


# The first batches of a run are smaller (then `size`): the first write starts after 5,000 rows
# read rather than 50,000, and the second writer soon after, instead of both waiting for a whole
# batch to be read with nothing to overlap it (docs/leads.md, "Speed"). A run's batches are cut
# from where it resumes (`processed`), so any sizes keep the resumption exact.
RAMP = (5_000, 20_000)


def batch_size() -> int:
    return int(settings.LEAD_IMPORT_BATCH_SIZE)


def batch_sizes(size: int) -> Iterator[int]:
    """The sizes of a run's batches, in order: the ramp (none larger than `size`), then `size`."""
    for ramp in RAMP:
        yield min(ramp, size)
    yield from itertools.repeat(size)


def _map_row(values: dict[str, str], mapping: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {"custom_fields": {}}
    for header, target in mapping.items():
        value = (values.get(header) or "").strip()
        if not target:
            continue
        if target.startswith(CUSTOM_PREFIX):
            if value:
                raw["custom_fields"][custom_key(target[len(CUSTOM_PREFIX) :])] = value
        else:
            raw[target] = value
    return raw


class RowCleaner:
    """Validate a CSV row (its cells) into a record, or say why not.

    The same rules as `clean_lead` over `_map_row` (tests/leads/test_email_fast_path.py compares
    them on generated rows), by column index and without the dicts: the million-row import
    spends most of its Python time here. A row that fails any check goes through `clean_lead`
    itself, which words the reasons.
    """

    def __init__(self, headers: list[str], mapping: dict[str, str]) -> None:
        self.headers = headers
        self.mapping = mapping
        at = {header: index for index, header in enumerate(headers)}
        self.email_at = -1
        self.tags_at: int | None = None
        self.text: list[tuple[int, int, int]] = []  # (cell, record slot, max length)
        self.custom: list[tuple[str, int]] = []
        self.timezone_slot: int | None = None
        for header, target in mapping.items():
            if header not in at or not target:
                continue
            if target == "email":
                self.email_at = at[header]
            elif target == "tags":
                self.tags_at = at[header]
            elif target.startswith(CUSTOM_PREFIX):
                self.custom.append((custom_key(target[len(CUSTOM_PREFIX) :]), at[header]))
            elif target in TEXT_FIELDS:
                slot = 1 + TEXT_NAMES.index(target)
                self.text.append((at[header], slot, TEXT_FIELDS[target]))
                if target == "timezone":
                    self.timezone_slot = slot
        self.zones = _time_zones()
        # A tags cell repeats a lot (a file's rows share a handful of segments): each distinct
        # value is split once. The lists are shared between records, which never change them.
        self.tags_seen: dict[str, list[str]] = {}

    def __call__(self, cells: list[str]) -> Record | tuple[str, str]:
        """A record, or (the address as written, the reason) for a row that fails."""
        return self.fast(cells) or self.slow(cells)

    def fast(self, cells: list[str]) -> Record | None:
        if self.email_at < 0:
            return None
        raw_email = cells[self.email_at].strip()
        email = plain_email(raw_email)
        if email is None:
            # Not plain: `slow` asks email-validator once (it is ~150 µs for an invalid address,
            # and asking here first paid it twice for every failed row).
            return None
        record: Record = [email, "", "", "", "", "", "", "", None, None, False, False, None]
        for cell, slot, limit in self.text:
            value = cells[cell].strip()
            if len(value) > limit:
                return None
            record[slot] = value
        if self.timezone_slot is not None:
            name = record[self.timezone_slot]
            if name and name not in self.zones:
                return None
        tags: list[str] = []
        if self.tags_at is not None:
            value = cells[self.tags_at].strip()
            if value:
                seen = self.tags_seen.get(value)
                if seen is None:
                    try:
                        seen = normalize_tags(value)
                    except ValueError:
                        return None
                    if len(self.tags_seen) >= _TAGS_SEEN_LIMIT:
                        self.tags_seen.clear()
                    self.tags_seen[value] = seen
                tags = seen
        custom: dict[str, str] = {}
        for key, cell in self.custom:
            value = cells[cell].strip()
            if value:
                if len(value) > MAX_CUSTOM_VALUE:
                    return None
                custom[key] = value
        if len(custom) > MAX_CUSTOM_FIELDS:
            return None
        local, _, domain = email.rpartition("@")
        record[CUSTOM] = custom
        record[TAGS] = tags
        record[ROLE] = local in ROLE_LOCAL_PARTS
        record[DISPOSABLE] = domain in DISPOSABLE_DOMAINS
        return record

    def slow(self, cells: list[str]) -> Record | tuple[str, str]:
        raw = _map_row(dict(zip(self.headers, cells, strict=True)), self.mapping)
        data, errors = clean_lead(raw)
        if data is None:
            return str(raw.get("email") or "")[:320], _reason(errors)
        # Only reached if the fast checks are stricter than clean_lead somewhere: its answer
        # stands.
        record = [data.email, *(data.fields.get(name, "") for name in TEXT_NAMES)]
        flags = [data.is_role_address, data.is_disposable, None]
        return [*record, dict(data.custom_fields), data.tags, *flags]


def _merge_record(into: Record, later: Record) -> None:
    """A later row of the same address folded into the first, as `leads._merge` would apply
    them one after the other: non-empty values win, custom fields merge, tags add up."""
    for slot in range(1, 1 + len(TEXT_NAMES)):
        if later[slot]:
            into[slot] = later[slot]
    if later[CUSTOM]:
        into[CUSTOM] = {**into[CUSTOM], **later[CUSTOM]}
    if later[TAGS]:
        into[TAGS] = list(dict.fromkeys([*into[TAGS], *later[TAGS]]))
    into[ROLE], into[DISPOSABLE] = later[ROLE], later[DISPOSABLE]
    if later[MX] is not None:
        into[MX] = later[MX]


def run_import(
    import_id: int,
    *,
    tenant: Tenant,
    size: int | None = None,
    on_progress: Callable[[LeadImport], None] | None = None,
) -> LeadImport | None:
    """The job: stream the file, validate, write in batches, count. Idempotent: a finished import
    is left alone; a running one resumes after its last committed batch."""
    _in_schema(tenant)
    size = size or batch_size()
    lead_import = LeadImport.objects.select_related("lead_list").filter(pk=import_id).first()
    if lead_import is None or lead_import.finished:
        return lead_import
    with transaction.atomic():
        LeadImport.objects.filter(pk=import_id, status=ImportStatus.PENDING).update(
            status=ImportStatus.RUNNING, started_at=timezone.now()
        )
    lead_import.refresh_from_db()
    try:
        if lead_import.total_rows is None:
            # Not a csv pass (that was ~1.1 s a million before any row was written): the lines,
            # and the file refused if it is not UTF-8 (`check_text`).
            with lead_import.file.open("rb") as stream:
                _set_total(lead_import, check_text(stream))
        if on_progress:
            on_progress(lead_import)

        def report(counts: Counts) -> None:
            counts.add_to(lead_import)
            if on_progress:
                on_progress(lead_import)

        _write_batches(lead_import, tenant=tenant, size=size, report=report)
        # Every row is read: the exact count (the lines counted may be more).
        _set_total(lead_import, lead_import.processed)
    except ImportTakenOver:
        lead_import.refresh_from_db()
        return lead_import
    except UnusableFile as exc:
        message = str(exc)
        if lead_import.processed:
            # Met by the reader past the rows already written (a csv error `check_text` cannot
            # see): they stay, and the message says so.
            message += f" The {lead_import.processed:,} rows before it were imported."
        _finish(tenant, lead_import, ImportStatus.FAILED, message)
    except FileNotFoundError:
        _finish(tenant, lead_import, ImportStatus.FAILED, "The uploaded file is gone.")
    else:
        _finish(tenant, lead_import, ImportStatus.COMPLETED, "")
    lead_import.refresh_from_db()
    if on_progress:
        on_progress(lead_import)
    return lead_import


def _set_total(lead_import: LeadImport, total: int) -> None:
    if total != lead_import.total_rows:
        LeadImport.objects.filter(pk=lead_import.pk).update(total_rows=total)
        lead_import.total_rows = total


def _finish(tenant: Tenant, lead_import: LeadImport, status: str, message: str) -> None:
    with transaction.atomic():
        moved = LeadImport.objects.filter(pk=lead_import.pk, status=ImportStatus.RUNNING).update(
            status=status, error_message=message[:500], finished_at=timezone.now()
        )
        if moved:
            lead_import.refresh_from_db()
            audit(
                f"leads.import_{status}",
                tenant=tenant,
                import_id=lead_import.pk,
                file=lead_import.original_name,
                processed=lead_import.processed,
                created=lead_import.created,
                updated=lead_import.updated,
                skipped=lead_import.skipped,
                failed=lead_import.failed,
                error=message,
            )


Problem = tuple[int, str, str, str]  # (line, email, outcome, reason)


@dataclass
class Batch:
    """A batch read and validated, ready to write: everything but the database's answers."""

    rows: int  # data rows it covers: what `processed` moves by
    problems: list[Problem]  # the failed rows
    valid: list[tuple[int, str]]  # (line, address) of every valid row, in file order
    first_line: dict[str, int]  # the line each staged address comes from
    stage: bytes  # the staged records (one per address) as COPY CSV, UTF-8
    seq: int = 0  # its number in this run: 0, 1, 2...
    start: int = 0  # the data rows before it: `processed` when it commits


def prepare_batch(
    rows: Iterable[tuple[int, list[str]]],
    *,
    cleaner: RowCleaner,
    mx: MxChecker | None,
    update: bool,
) -> Batch:
    """Validate a batch's rows and fold repeated addresses into one staged record each (update:
    merged in order; skip: the first stands, the later rows are reported by `_write_batch`)."""
    problems: list[Problem] = []
    valid: list[tuple[int, str]] = []
    staged: dict[str, Record] = {}
    first_line: dict[str, int] = {}
    count = 0
    for line, cells in rows:
        count += 1
        record = cleaner(cells)
        if isinstance(record, tuple):
            problems.append((line, record[0], RowOutcome.FAILED, record[1]))
            continue
        email = record[EMAIL]
        if mx is not None:
            record[MX] = mx(email.rpartition("@")[2])
        valid.append((line, email))
        first = staged.get(email)
        if first is None:
            staged[email] = record
            first_line[email] = line
        elif update:
            _merge_record(first, record)
    return Batch(count, problems, valid, first_line, _stage_text(list(staged.values())))


_STARTED, _UPSERTED = 1, 2  # how far a batch's transaction has gone (`_CommitOrder.level`)


class BatchReader:
    """Reads, validates and stages the batches in a thread, ahead of the writers.

    Validation is Python (one core) and the writes are PostgreSQL: while batches are written,
    the next is prepared. The thread touches no database connection. At most `ahead` batches
    are in memory (by default three: the one being read, two being written); the reader takes a
    slot before it starts a batch and a writer gives it back (`written`) when the batch is
    committed. Batches are handed out by number (`take`), so two writers can each take theirs.
    Leaving the `with` block stops the thread; an error in the thread (UnusableFile,
    FileNotFoundError) is raised by `take` at the batch it stopped.
    """

    def __init__(self, lead_import: LeadImport, *, size: int, ahead: int = 3) -> None:
        self.lead_import = lead_import
        self.sizes = batch_sizes(size)
        self.cleaner = RowCleaner(lead_import.headers, lead_import.mapping)
        self.mx = MxChecker() if lead_import.check_mx else None
        # Opened here: the tenant's storage finds the file by the connection's schema, and the
        # thread has a connection of its own (never used, never set to the tenant).
        self.stream = lead_import.file.storage.open(lead_import.file.name, "rb")
        self.cond = threading.Condition()
        self.ready: dict[int, Batch | BaseException] = {}
        self.end: int | None = None  # the number after the last batch, once known
        self.slots = threading.Semaphore(ahead)
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._read, name=f"lead-import-{lead_import.pk}", daemon=True
        )

    def __enter__(self) -> BatchReader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()
        self.slots.release()  # a reader waiting for a slot wakes up and sees `stopping`
        self.thread.join()
        self.stream.close()

    def take(self, seq: int, *, give_up: Callable[[int], bool] | None = None) -> Batch | None:
        """Batch number `seq` once read; None past the last one, or when `give_up` says so."""
        with self.cond:
            while seq not in self.ready:
                if (self.end is not None and seq >= self.end) or (give_up and give_up(seq)):
                    return None
                self.cond.wait()
            item = self.ready.pop(seq)
        if isinstance(item, BaseException):
            raise item
        return item

    def written(self) -> None:
        self.slots.release()

    def _put(self, seq: int, item: Batch | BaseException | None) -> None:
        with self.cond:
            if item is None:
                self.end = seq
            else:
                self.ready[seq] = item
                if isinstance(item, BaseException):
                    self.end = seq + 1
            self.cond.notify_all()

    def _slot(self) -> bool:
        while not self.stopping.is_set():
            if self.slots.acquire(timeout=0.5):
                return not self.stopping.is_set()
        return False

    def _read(self) -> None:
        lead_import = self.lead_import
        done = lead_import.processed
        update = lead_import.duplicates == DuplicatePolicy.UPDATE
        shape = {"delimiter": lead_import.delimiter, "headers": lead_import.headers}
        seq = 0
        try:
            rows = itertools.islice(iter_records(self.stream, **shape), done, None)
            while self._slot():
                # Consumed as read: a row's cells are dropped once cleaned.
                batch = prepare_batch(
                    itertools.islice(rows, next(self.sizes)),
                    cleaner=self.cleaner,
                    mx=self.mx,
                    update=update,
                )
                if not batch.rows:
                    self._put(seq, None)
                    return
                batch.seq, batch.start = seq, done
                done += batch.rows
                self._put(seq, batch)
                seq += 1
                del batch
        except BaseException as exc:  # handed to the writer, which raises it
            self._put(seq, exc)


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
                batch.stage = b""  # memory: a retry reads the batch again (`_write_batches`)
                suppressed = _take_out_suppressed(cursor)
                staged = len(batch.first_line)
                if order is not None:
                    order.wait(batch.seq, _UPSERTED)
                if update:
                    # The list membership in the same statement, from the ids it returns.
                    cursor.execute(_UPSERT_UPDATE, {"list": lead_import.lead_list_id})
                    created = cursor.fetchone()[0]
                    existing: set[str] = set()
                else:
                    cursor.execute(_INSERT_SKIP)
                    existing = {email for (email,) in cursor.fetchall()}
                    created = staged - len(suppressed) - len(existing)
                    if lead_import.lead_list_id is not None:
                        cursor.execute(_ADD_TO_LIST, [lead_import.lead_list_id])
                if order is not None:
                    order.reached(batch.seq, _UPSERTED)
                skipped = 0
                first_line = batch.first_line
                for line, email in batch.valid:
                    if email in suppressed:
                        skipped += 1
                        problems.append((line, email, RowOutcome.SKIPPED, suppressed[email]))
                    elif update:
                        continue  # created (counted above) or updated (counted below)
                    elif email in existing:
                        skipped += 1
                        reason = "duplicate: the lead exists"
                        problems.append((line, email, RowOutcome.SKIPPED, reason))
                    elif first_line[email] != line:
                        skipped += 1
                        reason = f"duplicate of line {first_line[email]}"
                        problems.append((line, email, RowOutcome.SKIPPED, reason))
                updated = len(batch.valid) - skipped - created if update else 0
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


# --- SQL ------------------------------------------------------------------------------------------
# Table and column names below come from the models, never from input (hence the S608 noqa).
# The staging table is the connection's own (TEMP) and empties itself at each commit, so a batch
# never sees another's rows and nothing is left behind; it is created by the first batch of each
# connection.
_CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
    email text,
    first_name text, last_name text, company text, title text, website text, phone text,
    timezone text, custom_fields jsonb, tags varchar(64)[],
    is_role_address boolean, is_disposable boolean, mx_ok boolean
) ON COMMIT DELETE ROWS
"""
_LEAD = Lead._meta.db_table
_THROUGH = Lead.lists.through._meta.db_table
_SUPPRESSION = Suppression._meta.db_table
_ERRORS = LeadImportError._meta.db_table
_TEXT_SET = ",\n    ".join(
    f"{name} = COALESCE(NULLIF(EXCLUDED.{name}, ''), l.{name})" for name in TEXT_NAMES
)
_INSERT = f"""
INSERT INTO {_LEAD} AS l ({", ".join(_COLUMNS)}, status, created_at, updated_at)
SELECT {", ".join(_COLUMNS)}, 'active', now(), now() FROM {STAGE}
"""  # noqa: S608
# `xmax = 0` is PostgreSQL's mark of a row this statement inserted (an updated row carries the
# updating transaction's id): how created and updated leads are told apart in one statement.
_UPSERT_UPDATE = f"""
WITH written AS ({_INSERT}
ON CONFLICT (email) DO UPDATE SET
    {_TEXT_SET},
    custom_fields = l.custom_fields || EXCLUDED.custom_fields,
    tags = CASE WHEN cardinality(EXCLUDED.tags) = 0 THEN l.tags ELSE ARRAY(
        SELECT t FROM unnest(l.tags || EXCLUDED.tags) WITH ORDINALITY AS u(t, n)
        GROUP BY t ORDER BY min(n)
    ) END,
    is_role_address = EXCLUDED.is_role_address,
    is_disposable = EXCLUDED.is_disposable,
    mx_ok = COALESCE(EXCLUDED.mx_ok, l.mx_ok),
    updated_at = EXCLUDED.updated_at
RETURNING id, xmax = 0 AS inserted),
-- A lead this statement created cannot be in the list yet (no other transaction sees it): its
-- membership is a plain insert, without the conflict check each row of ON CONFLICT pays.
member_new AS (
    INSERT INTO {_THROUGH} (lead_id, leadlist_id)
    SELECT id, %(list)s FROM written WHERE inserted AND %(list)s::bigint IS NOT NULL
),
member_old AS (
    INSERT INTO {_THROUGH} (lead_id, leadlist_id)
    SELECT id, %(list)s FROM written WHERE NOT inserted AND %(list)s::bigint IS NOT NULL
    ON CONFLICT DO NOTHING
)
SELECT count(*) FILTER (WHERE inserted) FROM written
"""  # noqa: S608
# The staged addresses that were not inserted: they exist (skipped by policy).
_INSERT_SKIP = f"""
WITH written AS ({_INSERT} ON CONFLICT (email) DO NOTHING RETURNING email)
SELECT s.email FROM {STAGE} s WHERE NOT EXISTS (SELECT 1 FROM written w WHERE w.email = s.email)
"""  # noqa: S608
# An address suppressed itself wins over its domain (as in `suppressed_among`). Two equality
# joins rather than one join on `a OR b`, which PostgreSQL can only run as a nested loop.
_TAKE_OUT_SUPPRESSED = f"""
WITH hit AS (
    SELECT DISTINCT ON (email) email, is_domain, reason FROM (
        SELECT s.email, x.is_domain, x.reason, 0 AS rank
        FROM {STAGE} s JOIN {_SUPPRESSION} x ON x.value = s.email
        UNION ALL
        SELECT s.email, x.is_domain, x.reason, 1
        FROM {STAGE} s JOIN {_SUPPRESSION} x ON x.value = split_part(s.email, '@', 2)
    ) found ORDER BY email, rank
)
DELETE FROM {STAGE} s USING hit WHERE s.email = hit.email
RETURNING hit.email, hit.is_domain, hit.reason
"""  # noqa: S608
# The skip policy's list membership: every staged lead, the new and those left alone.
_ADD_TO_LIST = f"""
INSERT INTO {_THROUGH} (lead_id, leadlist_id)
SELECT l.id, %s FROM {STAGE} s JOIN {_LEAD} l ON l.email = s.email
ON CONFLICT DO NOTHING
"""  # noqa: S608


def _stage_text(records: list[Record]) -> bytes:
    """The records as the staging table's COPY input: CSV written by the csv module (in C: a
    third of the time of psycopg's row-by-row `write_row`), built in the reader thread. The
    records are spent: their custom fields and tags become their text in place (a tuple per
    row cost more than the rest of the formatting)."""
    arrays: dict[tuple[str, ...], str] = {(): "{}"}  # few distinct tag sets: each quoted once
    keys: dict[str, str] = {}  # a custom key as JSON, with its colon
    for record in records:
        custom = record[CUSTOM]
        if custom:
            # What json.dumps writes (its own C string encoder), without its per-call cost.
            parts = []
            for key, value in custom.items():
                name = keys.get(key)
                if name is None:
                    name = keys[key] = _json_string(key) + ":"
                parts.append(name + _json_string(value))
            record[CUSTOM] = "{" + ",".join(parts) + "}"
        else:
            record[CUSTOM] = "{}"
        tags = tuple(record[TAGS])
        text = arrays.get(tags)
        if text is None:
            text = arrays[tags] = _array(record[TAGS])
        record[TAGS] = text
    buffer = io.StringIO()
    # Every value quoted, so none reads as NULL (CSV's NULL is an unquoted empty value), except
    # mx_ok's None (written as an empty string), which FORCE_NULL turns into NULL ("not
    # checked"); booleans are written True/False, which PostgreSQL reads.
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerows(records)
    return buffer.getvalue().encode()


def _stage(cursor: Any, text: bytes) -> None:
    """COPY the prepared records into the staging table."""
    cursor.execute(_CREATE_STAGE)
    columns = ", ".join(_COLUMNS)
    sql = f"COPY {STAGE} ({columns}) FROM STDIN WITH (FORMAT csv, FORCE_NULL (mx_ok))"
    with cursor.copy(sql) as copy:
        copy.write(text)


def _array(items: list[str]) -> str:
    """A PostgreSQL array literal of strings."""
    quoted = (t.replace("\\", "\\\\").replace('"', '\\"') for t in items)
    return "{" + ",".join(f'"{t}"' for t in quoted) + "}"


def _take_out_suppressed(cursor: Any) -> dict[str, str]:
    """Remove the suppressed addresses from the staging table: {address: reason}."""
    if not Suppression.objects.exists():
        return {}
    cursor.execute(_TAKE_OUT_SUPPRESSED)
    return {
        email: (
            f"suppressed {'domain' if is_domain else 'address'} "
            f"({SuppressionReason(reason).label.lower()})"
        )
        for email, is_domain, reason in cursor.fetchall()
    }


def _write_problems(cursor: Any, import_id: int, problems: list[Problem]) -> None:
    if not problems:
        return
    columns = "lead_import_id, line, email, outcome, reason"
    with cursor.copy(f"COPY {_ERRORS} ({columns}) FROM STDIN") as copy:
        for line, email, outcome, reason in problems:
            copy.write_row((import_id, line, email[:320], str(outcome), reason[:500]))
