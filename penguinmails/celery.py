"""The Celery application. Queues are drained in strict priority order: high, default, low."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "penguinmails.settings")

app = Celery("penguinmails")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
