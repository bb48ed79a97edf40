"""What the workspace home page shows from the apps above tenants.

The home page (tenants.views.dashboard.home) summarises every app, but tenants imports none of
them: an app registers a panel provider at start-up (its AppConfig.ready) and the page merges
what the providers return into its template context. A provider takes the acting principal and
returns context entries; it must run a constant number of queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenants.services.access import Principal

PanelProvider = Callable[[Principal], dict[str, Any]]

_providers: list[PanelProvider] = []


def register_panels(provider: PanelProvider) -> None:
    """Add `provider` to the home page (once; registering it again does nothing)."""
    if provider not in _providers:
        _providers.append(provider)


def panels_for(principal: Principal) -> dict[str, Any]:
    """Every registered provider's entries, in registration order."""
    context: dict[str, Any] = {}
    for provider in _providers:
        context.update(provider(principal))
    return context
