from __future__ import annotations

from django.apps import AppConfig


class PenguinmailsConfig(AppConfig):
    name = "penguinmails"
    verbose_name = "Platform"
