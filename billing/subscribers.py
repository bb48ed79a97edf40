"""Billing's answers to the events of the apps below it (tenants.signals): plan limits and
features, refused with LimitReached. Connected at start-up by BillingConfig.ready."""

from __future__ import annotations

from typing import Any

from billing.entitlements import (
    Feature,
    Resource,
    members_in_use,
    require_capacity,
    require_feature,
)
from tenants import signals
from tenants.models import Tenant


def _api_access(sender: Any, *, tenant: Tenant, **_: Any) -> None:
    require_feature(tenant, Feature.API_ACCESS)


def _member_seat(sender: Any, *, tenant: Tenant, **_: Any) -> None:
    require_capacity(tenant, Resource.MEMBERS, in_use=members_in_use(tenant, lock=True))


def connect() -> None:
    signals.api_access_requested.connect(_api_access, dispatch_uid="billing.api_access")
    signals.member_seat_requested.connect(_member_seat, dispatch_uid="billing.member_seat")
