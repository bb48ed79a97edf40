"""System checks of the hardening and resource settings (run at startup by `check`, `migrate`,
`runserver`): a bad value stops the deploy instead of the first server's provisioning."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning

from infrastructure.firewall import FirewallError, parse_networks


@register()
def hardening_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    try:
        has_networks = bool(parse_networks(settings.STAFF_NETWORKS))
    except FirewallError as exc:
        has_networks = True  # bad, reported below: not also "empty"
        errors.append(
            Error(
                str(exc),
                hint="List CIDRs, e.g. 198.51.100.0/24,2001:db8::/48.",
                id="infrastructure.E001",
            )
        )
    for size, value in settings.VPS_MEMORY_MB.items():
        if not str(value).strip().isdigit():
            errors.append(
                Error(
                    f"VPS_MEMORY_MB: {size}={value!r} is not a number of megabytes.",
                    id="infrastructure.E002",
                )
            )
    template = settings.NODE_EXPORTER_URL_TEMPLATE
    if "{ip}" not in template and "{hostname}" not in template:
        errors.append(
            Error(
                "NODE_EXPORTER_URL_TEMPLATE must contain {ip} or {hostname}.",
                id="infrastructure.E003",
            )
        )
    real_servers = settings.VPS_PROVIDER == "hostwinds" or (
        not settings.VPS_PROVIDER and settings.HOSTWIND_API_KEY
    )
    if real_servers and not has_networks:
        errors.append(
            CheckWarning(
                "STAFF_NETWORKS is empty: new servers' firewalls close SSH and node_exporter to "
                "everyone, so their CPU, memory and disk cannot be read.",
                hint="List staff networks and the workers' egress addresses.",
                id="infrastructure.W001",
            )
        )
    return errors
