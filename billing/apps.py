from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imported here: the subscribers read models, which exist only once apps are loaded.
        from billing import subscribers
        from billing.services import dunning

        # Plan features and limits answer tenants' events (API access, member seats).
        subscribers.connect()
        # The dunning ladder holds an overdue tenant's sending (tenants' send check).
        dunning.connect()
        # `make run`'s local Stripe starts empty: plans synced to it, stale references dropped.
        from billing.services.stripe_local import prepare_local_stripe
        from penguinmails.sandbox.stripe_ready import on_ready

        on_ready(prepare_local_stripe)
