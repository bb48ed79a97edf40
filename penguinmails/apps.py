from __future__ import annotations

from django.apps import AppConfig


class PenguinmailsConfig(AppConfig):
    name = "penguinmails"
    verbose_name = "Platform"

    def ready(self) -> None:
        # Imported here: the registry reads models, which exist only once apps are loaded.
        from penguinmails.queue import registry

        # Every app's job handlers, found at start-up (each app's `jobs` module registers its
        # own), so a worker knows them all before its first message.
        registry.autodiscover()
        # Every SQL statement of every process is timed for /metrics (penguinmails.metrics).
        from penguinmails.metrics import db as metrics_db

        metrics_db.install()
