"""PenguinMails: multi-tenant outbound email infrastructure."""

from __future__ import annotations

from penguinmails.celery import app as celery_app

__all__ = ["celery_app"]
