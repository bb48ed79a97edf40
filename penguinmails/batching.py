"""Writes gathered over a batch of units of work and written once, at the batch's end.

A writer whose work adds up (rollup increments: `campaigns.services.stats.bump`) asks `defer`
whether a batch is open; when one is, its items are kept and written by the writer's own flush
function once, at the end of the batch, in the batch's transaction. The inbound poller acts on a
chunk of messages in one transaction, one savepoint each (deliverability.services.inbound_store):
it opens a batch around the chunk, so fifty messages cost one rollup upsert and one protection
judgement instead of fifty. A batch whose block raises writes nothing: its transaction is rolled
back with it, and the counts stay those of the work that was committed.

Outside a batch nothing changes: `defer` returns False and the writer writes at once.

`remember` keeps what a batch's first unit looked up for all of them (the chunk's matches), for
the batch's duration.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

Flush = Callable[[list[Any]], object]
T = TypeVar("T")


class Batch:
    """The deferred items of one batch, per flush function, in the order they were deferred."""

    def __init__(self) -> None:
        self._items: dict[Flush, list[Any]] = {}
        self.memo: dict[Hashable, Any] = {}

    def add(self, flush: Flush, items: Iterable[Any]) -> None:
        self._items.setdefault(flush, []).extend(items)

    def flush(self) -> None:
        """Write everything deferred, each writer once, in the order writers first deferred."""
        pending, self._items = self._items, {}
        for flush, items in pending.items():
            if items:
                flush(items)


_current: ContextVar[Batch | None] = ContextVar("penguinmails_batch", default=None)


@contextmanager
def batch() -> Iterator[Batch]:
    """Open a batch; on a normal exit its writes are flushed (inside the caller's transaction,
    which the caller keeps open around this block). On an exception nothing is written."""
    current = Batch()
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)
    current.flush()  # after the reset: a writer's flush writes at once, never defers again


def defer(flush: Flush, items: Iterable[Any]) -> bool:
    """Keep `items` for `flush` at the end of the open batch; False (nothing kept) when no batch
    is open, and the caller writes them now."""
    current = _current.get()
    if current is None:
        return False
    current.add(flush, items)
    return True


def remember(key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` once per open batch for `key` (what a unit of work looks up for the whole
    batch: the inbound poller's chunk is matched in one go by its first message); computed
    each time when no batch is open."""
    current = _current.get()
    if current is None:
        return compute()
    if key not in current.memo:
        current.memo[key] = compute()
    return current.memo[key]  # type: ignore[no-any-return]
