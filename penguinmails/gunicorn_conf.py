"""gunicorn's configuration for the web process (Procfile: `-c python:penguinmails.gunicorn_conf`).

Workers are forked after this runs and import the application themselves (no preload), so the
metrics role set here names their files (penguinmails.metrics.instruments).
"""

from __future__ import annotations

from typing import Any

from penguinmails.metrics.instruments import start_process


def on_starting(server: Any) -> None:
    """Once, in the master, before any worker: this host's web metrics files from a previous run
    are deleted, so /metrics adds up only this run's workers (living and recycled)."""
    start_process("web")
