from __future__ import annotations

from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "penguinmails.history"
    label = "history"
    verbose_name = "Transition history"
    default_auto_field = "django.db.models.BigAutoField"
