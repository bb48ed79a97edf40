from __future__ import annotations

from django.apps import AppConfig


class WarmupConfig(AppConfig):
    name = "warmup"
    verbose_name = "Warm-up"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: these modules read models, which exist only once apps are loaded.
        from deliverability.services.allowance import register_warmup_provider
        from deliverability.signals import mailbox_moved
        from warmup.services.capacity import holds
        from warmup.services.pool import on_mailbox_moved

        # The capacity module asks us what warm-up holds of a mailbox (docs/warmup.md).
        register_warmup_provider(holds)
        # The pool's public index follows the mailbox's moves (paused, failing, deleted...).
        mailbox_moved.connect(on_mailbox_moved, dispatch_uid="warmup.pool")
        # The receiving side (docs/warmup.md): its job handlers, the inbound poller's
        # interceptor and the sandbox's junk recogniser.
        from warmup import receiving, receiving_jobs  # noqa: F401

        receiving.connect()
