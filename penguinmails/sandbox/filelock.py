"""A JSON file shared between the sandbox's processes (the zone file, the rule table): writers
take an exclusive `flock` on a side file, so a read-modify-write is never interleaved."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: Path | None) -> Iterator[None]:
    """Hold the lock of `path` (`<path>.lock`); nothing to lock for an in-memory store (None)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
