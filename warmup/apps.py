from __future__ import annotations

from django.apps import AppConfig


class WarmupConfig(AppConfig):
    name = "warmup"
    verbose_name = "Warm-up"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The receiving side (docs/warmup.md): its job handlers, the inbound poller's
        # interceptor and the sandbox's junk recogniser.
        from warmup import receiving, receiving_jobs  # noqa: F401

        receiving.connect()
