"""What the apps above billing do when the dunning ladder stops or restores a tenant's service.

Billing sits below infrastructure and campaigns in the layers, so it cannot call them: they
register here from their AppConfig.ready() (docs/billing.md, "Dunning").

- `Level.SENDING`: campaigns pauses the tenant's running campaigns (day BILLING_GRACE_DAYS);
- `Level.INFRASTRUCTURE`: infrastructure stops the tenant's servers at the VPS provider, IPs kept,
  nothing deleted (day BILLING_SUSPEND_DAYS).

`stop(tenant)` returns a JSON-able record of exactly what it stopped; billing keeps it and hands
it back to `restart(tenant, record)` after payment, so only what the ladder stopped is restarted.
Both are called outside any transaction of billing's and must be idempotent: a step that failed
is tried again on the next run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenants.models import Tenant

Record = dict[str, Any]


class Level(enum.StrEnum):
    SENDING = "sending"
    INFRASTRUCTURE = "infrastructure"


@dataclass(frozen=True)
class Hook:
    name: str
    level: Level
    stop: Callable[[Tenant], Record]
    restart: Callable[[Tenant, Record], Record]


_HOOKS: dict[str, Hook] = {}


def register_dunning_hook(
    name: str,
    level: Level,
    *,
    stop: Callable[[Tenant], Record],
    restart: Callable[[Tenant, Record], Record],
) -> None:
    """Register (or replace, by name) what an app stops and restarts at a level."""
    _HOOKS[name] = Hook(name, level, stop, restart)


def hooks(level: Level) -> list[Hook]:
    return [hook for hook in _HOOKS.values() if hook.level == level]
