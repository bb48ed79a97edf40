from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class AlertsConfig(AppConfig):
    name = "penguinmails.alerts"
    label = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The core's own rules, then every app's `alerts` module (each registers its rules with
        # @register_rule at import), as the queue finds `jobs` modules.
        from penguinmails.alerts import builtin  # noqa: F401

        autodiscover_modules("alerts")
