"""Reading, validating and staging the batches in a thread, ahead of the writers."""

from __future__ import annotations

import itertools
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings

from campaigns.imports import (
    iter_records,
)
from campaigns.models import (
    DuplicatePolicy,
    LeadImport,
    RowOutcome,
)
from campaigns.services.lead_import.rows import (
    EMAIL,
    MX,
    Problem,
    RowCleaner,
    _merge_record,
)
from campaigns.services.lead_import.sql import Packed, Packer, _copy_chunks
from campaigns.services.leads import (
    MxChecker,
)

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


@dataclass
class Batch:
    """A batch read and validated, ready to write: everything but the database's answers."""

    rows: int  # data rows it covers: what `processed` moves by
    problems: list[Problem]  # the failed rows
    # Every valid row, in file order: its line and its address (an array and a list rather than
    # a tuple each: a prepared batch waits in memory for its writer).
    lines: array[int]
    emails: list[str]
    staged: int  # addresses staged (one record each)
    repeats: dict[int, int]  # a later row of an address of the batch: its line -> the first's
    stage: list[bytes]  # the staged records (one per address) as COPY text, UTF-8, in chunks
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
    lines: array[int] = array("q")
    emails: list[str] = []
    repeats: dict[int, int] = {}
    packer = Packer()
    staged: dict[str, Packed] = {}  # each address's record, packed as it comes (`Packer`)
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
        lines.append(line)
        emails.append(email)
        first = staged.get(email)
        if first is None:
            staged[email] = packer.pack(record)
            first_line[email] = line
            continue
        repeats[line] = first_line[email]
        if update:
            merged = packer.unpack(first)
            _merge_record(merged, record)
            staged[email] = packer.pack(merged)
    addresses = len(staged)
    packed = list(staged.values())
    staged.clear()  # the packed records are dropped chunk by chunk as their text is built
    return Batch(count, problems, lines, emails, addresses, repeats, _copy_chunks(packed))


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
