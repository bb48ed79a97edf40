from __future__ import annotations

from django.apps import AppConfig


class ReputationConfig(AppConfig):
    name = "reputation"
    verbose_name = "Reputation and blocklists"
    default_auto_field = "django.db.models.BigAutoField"
