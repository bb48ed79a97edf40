from __future__ import annotations

from django.apps import AppConfig


class DeliverabilityConfig(AppConfig):
    name = "deliverability"
    verbose_name = "Deliverability (sending domains)"
    default_auto_field = "django.db.models.BigAutoField"
