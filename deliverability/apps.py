from __future__ import annotations

from django.apps import AppConfig


class DeliverabilityConfig(AppConfig):
    name = "deliverability"
    verbose_name = "Deliverability (sending domains)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Billing shows what the plan's limits are used by; the counting is ours (billing.usage).
        from billing.limits import Resource
        from billing.usage import register_usage_counter
        from deliverability.models import SendingDomain
        from deliverability.services import usage
        from infrastructure.services.ip_binding import register_sender_domains
        from penguinmails.sandbox import scope

        register_usage_counter(Resource.MAILBOXES, usage.mailboxes_in_use)
        register_usage_counter(Resource.SENDING_DOMAINS, usage.domains_in_use)
        register_usage_counter(Resource.DAILY_SENDS, usage.sends_today)

        def verified_domain_names() -> list[str]:
            verified = SendingDomain.objects.filter(verified_at__isnull=False)
            return list(verified.values_list("name", flat=True))

        # The sandbox's mail pages show a tenant what it sent from its verified domains.
        scope.register_verified_domains(verified_domain_names)

        def sending_domain_names(tenant: object) -> list[str]:
            return list(SendingDomain.objects.values_list("name", flat=True))

        # Infrastructure binds each sending domain to one of the tenant's IPs (Postfix's
        # sender-dependent transports, docs/infrastructure.md "Which IP mail leaves from").
        register_sender_domains(sending_domain_names)
