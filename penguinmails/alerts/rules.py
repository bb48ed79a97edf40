"""The registry of periodic alert rules. Each app's `alerts` module registers its own with
`@register_rule(name)` at import (autodiscovered at start-up by AlertsConfig.ready, as jobs are);
`alerts.evaluate` (beat, every minute) runs them all."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from penguinmails.alerts.severity import Severity


@dataclass(frozen=True)
class Finding:
    """One subject for which a rule's condition is true now."""

    subject: str
    summary: str
    severity: Severity = Severity.WARNING
    detail: dict[str, Any] | None = None
    tenant_schema: str | None = None


RuleFunc = Callable[[datetime], Iterable[Finding]]

_rules: dict[str, RuleFunc] = {}


@dataclass(frozen=True)
class Rule:
    name: str
    func: RuleFunc = field(repr=False)


def register_rule(name: str) -> Callable[[RuleFunc], RuleFunc]:
    """Register `func(now) -> findings` as the periodic rule `name`."""

    def register(func: RuleFunc) -> RuleFunc:
        existing = _rules.get(name)
        if existing is not None and existing.__qualname__ != func.__qualname__:
            raise ValueError(f"alert rule {name!r} is registered twice")
        _rules[name] = func
        return func

    return register


def registered_rules() -> list[Rule]:
    return [Rule(name, func) for name, func in sorted(_rules.items())]


def rule_named(name: str) -> RuleFunc:
    if name not in _rules:
        raise LookupError(f"no alert rule {name!r}")
    return _rules[name]
