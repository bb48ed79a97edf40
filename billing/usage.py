"""What a tenant uses of each plan limit, counted by the app that owns the thing.

Billing sits below the apps that own mailboxes, domains, servers and sends, so it cannot count
them itself: each owning app registers a counter at start-up (its AppConfig.ready()) and the
billing page and API read them through `counted_usage`. A limit without a registered counter
shows as not counted (None).
"""

from __future__ import annotations

from collections.abc import Callable

from tenants.models import Tenant

# The plan's server count is a limit too, though not a `Resource` that require_capacity checks
# (servers are bought once, by provisioning, not added one by one).
SERVERS = "servers"

UsageCounter = Callable[[Tenant], int]
_COUNTERS: dict[str, UsageCounter] = {}


def register_usage_counter(resource: str, counter: UsageCounter) -> None:
    """Count `resource` (a Resource value, or SERVERS) for the billing page and API."""
    _COUNTERS[str(resource)] = counter


def counted_usage(tenant: Tenant) -> dict[str, int]:
    """Every registered counter's figure for `tenant`."""
    return {resource: counter(tenant) for resource, counter in _COUNTERS.items()}
