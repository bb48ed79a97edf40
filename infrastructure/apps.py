from __future__ import annotations

from django.apps import AppConfig

from infrastructure import checks  # noqa: F401  (registers the settings' system checks)


class InfrastructureConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "infrastructure"
    verbose_name = "Infrastructure"

    def ready(self) -> None:
        # Billing shows what the plan's limits are used by; the counting is ours (billing.usage).
        from billing.limits import Resource
        from billing.usage import SERVERS, register_usage_counter
        from infrastructure.services import usage

        register_usage_counter(Resource.DEDICATED_IPS, usage.dedicated_ips_in_use)
        register_usage_counter(SERVERS, usage.servers_in_use)
        # /health/email probes every active mail server.
        from infrastructure.health import active_mail_servers
        from penguinmails.health import register_mail_servers

        register_mail_servers(active_mail_servers)
        # Margins: billing reads our cost records through its registry.
        from billing.costs import register_allocation_cost, register_cost_source
        from infrastructure.services import costs

        register_cost_source("infrastructure", costs.tenant_costs)
        register_allocation_cost(costs.allocation_cost)
        # Dunning: an overdue tenant's servers are stopped, and started again once it pays.
        from billing.dunning_hooks import Level, register_dunning_hook
        from infrastructure.services import suspension

        register_dunning_hook(
            "infrastructure.servers",
            Level.INFRASTRUCTURE,
            stop=suspension.suspend_servers,
            restart=suspension.resume_servers,
        )
