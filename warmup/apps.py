from __future__ import annotations

from django.apps import AppConfig


class WarmupConfig(AppConfig):
    name = "warmup"
    verbose_name = "Warm-up"
    default_auto_field = "django.db.models.BigAutoField"
