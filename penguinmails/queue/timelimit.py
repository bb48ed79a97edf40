"""A per-job soft time limit inside one Celery message (a batch of jobs, penguinmails.queue.batch).

Celery's own soft limit covers a whole message; a batch arms this one around each handler. It
raises the same SoftTimeLimitExceeded from SIGALRM, so the runner treats both alike (a transient
failure). Only in a process's main thread (where signals are delivered); elsewhere, and with no
limit, it does nothing, and the message's hard limit remains the backstop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from celery.exceptions import SoftTimeLimitExceeded


def _expired(signum: int, frame: FrameType | None) -> None:
    raise SoftTimeLimitExceeded("soft time limit exceeded")


@contextmanager
def soft_time_limit(seconds: float | None) -> Iterator[None]:
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
