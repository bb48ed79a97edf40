"""What the platform pays for a tenant's infrastructure, reported by infrastructure.

Billing sits below infrastructure, which holds the cost records (each server's and IP's
monthly cost): infrastructure registers its sources at start-up (AppConfig.ready) and the
margins (billing.services.margins) read them here (docs/billing.md, "Margins").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from billing.limits import PlanLimits

# {tenant id: {cost line ("servers", "ips", ...): cents}} for the month [start, end).
CostSource = Callable[[dt.datetime, dt.datetime], dict[int, dict[str, int]]]
# {cost line: cents a month} of a plan's allocation at today's unit costs.
AllocationCost = Callable[[PlanLimits], dict[str, int]]

_SOURCES: dict[str, CostSource] = {}
_ALLOCATION: list[AllocationCost] = []


def register_cost_source(name: str, source: CostSource) -> None:
    _SOURCES[name] = source


def register_allocation_cost(cost: AllocationCost) -> None:
    _ALLOCATION[:] = [cost]


def monthly_costs(start: dt.datetime, end: dt.datetime) -> dict[int, dict[str, int]]:
    """Every registered source's cost lines per tenant for the month, merged."""
    merged: dict[int, dict[str, int]] = {}
    for source in _SOURCES.values():
        for tenant_id, lines in source(start, end).items():
            row = merged.setdefault(tenant_id, {})
            for line, cents in lines.items():
                row[line] = row.get(line, 0) + cents
    return merged


def allocation_cost(limits: PlanLimits) -> dict[str, int]:
    if not _ALLOCATION:
        raise LookupError("No allocation cost is registered (the infrastructure app is off).")
    return _ALLOCATION[0](limits)
