"""Notices a higher app shows on the domains page (the reputation app: a sending domain on a
domain blocklist), registered at start-up (AppConfig.ready), so deliverability imports nothing
above it. A provider gets the tenant and returns notices; called in the tenant's schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenants.models import Tenant


@dataclass(frozen=True)
class Notice:
    """One banner: what happened (`text`) and where to read more (`url`, may be "")."""

    text: str
    url: str = ""
    level: str = "danger"  # banner-<level>


DomainNotices = Callable[[Tenant], list[Notice]]
_PROVIDERS: list[DomainNotices] = []


def register_domain_notices(provider: DomainNotices) -> None:
    """Add a provider (the same function twice is a no-op)."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def domain_notices(tenant: Tenant) -> list[Notice]:
    return [notice for provider in _PROVIDERS for notice in provider(tenant)]
