"""The Celery application. Queues are drained in strict priority order: high, default, low.

Celery only carries job ids; the durable queue (penguinmails.queue, docs/queue.md) keeps the work.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init, worker_ready, worker_shutdown

from penguinmails.metrics.instruments import start_process
from penguinmails.queue import live
from penguinmails.schedule import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "penguinmails.settings")

app = Celery("penguinmails")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()

PRESENCE_INTERVAL = 10.0


@worker_init.connect
def _start_worker_metrics(**_: Any) -> None:
    """Before the pool forks: its processes count into files named `worker-...` in
    PROMETHEUS_MULTIPROC_DIR, and a previous run's are cleared (penguinmails.metrics)."""
    start_process("worker")


@beat_init.connect
def _start_beat_metrics(**_: Any) -> None:
    start_process("beat")


_presence_stop = threading.Event()


def _presence_name(sender: Any) -> str:
    return str(getattr(sender, "hostname", None) or socket.gethostname())


@worker_ready.connect
def _announce_presence(sender: Any = None, **_: Any) -> None:
    """Workers refresh a Redis entry every few seconds: /health/queue counts the fresh ones."""
    name = _presence_name(sender)

    def loop() -> None:
        live.announce_worker(name)
        while not _presence_stop.wait(PRESENCE_INTERVAL):
            live.announce_worker(name)

    threading.Thread(target=loop, name="worker-presence", daemon=True).start()


@worker_shutdown.connect
def _withdraw_presence(sender: Any = None, **_: Any) -> None:
    _presence_stop.set()
    live.withdraw_worker(_presence_name(sender))
