"""gunicorn's configuration for the web process (Procfile: `-c python:penguinmails.gunicorn_conf`).

Workers are forked after this runs and import the application themselves (no preload), so the
metrics role and slot set here name their files (penguinmails.metrics.instruments).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from penguinmails.metrics.instruments import SLOT_ENV, slot_name, start_process

# Metrics file slots of exited workers, for their successors (master process only).
_free_slots: list[str] = []
_new_slots = itertools.count()


def on_starting(server: Any) -> None:
    """Once, in the master, before any worker: this host's web metrics files from a previous run
    are deleted, so /metrics adds up only this run's workers (living and recycled)."""
    start_process("web")


def pre_fork(server: Any, worker: Any) -> None:
    """In the master: a new worker takes the slot of one that exited, or a new one."""
    slot = _free_slots.pop() if _free_slots else slot_name("web", next(_new_slots))
    worker.pm_metrics_slot = slot


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker, before it loads the application and counts anything."""
    os.environ[SLOT_ENV] = worker.pm_metrics_slot


def child_exit(server: Any, worker: Any) -> None:
    """In the master, once the worker process is gone: its files are free for a successor."""
    slot = getattr(worker, "pm_metrics_slot", None)
    if slot is not None:
        _free_slots.append(slot)
