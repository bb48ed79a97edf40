"""The alert engine (issue 15; docs/operations.md, "Alerts").

    from penguinmails.alerts import raise_alert, resolve_alert, register_rule, Finding, Severity

    raise_alert("blocklist.listed", "ip:203.0.113.7", summary="...", detail={...})
    resolve_alert("blocklist.listed", "ip:203.0.113.7", note="delisted")

    @register_rule("queue.backlog")           # in an app's `alerts` module
    def backlog(now: datetime) -> Iterable[Finding]: ...

The services are imported lazily: this package is an installed app, imported before models load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguinmails.alerts.rules import Finding, register_rule
from penguinmails.alerts.severity import AlertState, Severity

if TYPE_CHECKING:
    from penguinmails.alerts.models import Alert
    from penguinmails.alerts.services import (
        acknowledge_alert,
        evaluate_rules,
        open_alerts,
        open_alerts_for_tenant,
        raise_alert,
        resolve_alert,
    )

_LAZY = {
    "Alert": "penguinmails.alerts.models",
    "acknowledge_alert": "penguinmails.alerts.services",
    "evaluate_rules": "penguinmails.alerts.services",
    "open_alerts": "penguinmails.alerts.services",
    "open_alerts_for_tenant": "penguinmails.alerts.services",
    "raise_alert": "penguinmails.alerts.services",
    "resolve_alert": "penguinmails.alerts.services",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'penguinmails.alerts' has no attribute {name!r}")


__all__ = [
    "Alert",
    "AlertState",
    "Finding",
    "Severity",
    "acknowledge_alert",
    "evaluate_rules",
    "open_alerts",
    "open_alerts_for_tenant",
    "raise_alert",
    "register_rule",
    "resolve_alert",
]
