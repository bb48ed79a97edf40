from __future__ import annotations

from django.apps import AppConfig


class ReputationConfig(AppConfig):
    name = "reputation"
    verbose_name = "Reputation and blocklists"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: these modules read models, which exist only once apps are loaded.
        from deliverability.services.allowance import register_allowance_factor
        from reputation import faces
        from reputation.services.scores import allowance_factors

        # A low mailbox score lowers its campaign allowance (docs/reputation.md).
        register_allowance_factor(allowance_factors)
        # The warm-up page's score panel and the domains page's listing notice.
        faces.connect()
