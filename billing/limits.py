"""The shape of a plan's limits document, and its validation.

Kept free of models so the migration that seeds plans and the model's `clean()` validate with the
same code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from django.db import models


class Resource(models.TextChoices):
    """Countable limits: "may this tenant have one more X?"."""

    MAILBOXES = "mailboxes", "mailboxes"
    SENDING_DOMAINS = "sending_domains", "sending domains"
    DAILY_SENDS = "daily_sends", "daily sends"
    DEDICATED_IPS = "dedicated_ips", "dedicated IPs"
    MEMBERS = "members", "members"


# Singular labels for "allows 1 dedicated IP" (the choices' labels are the plurals).
SINGULAR: dict[str, str] = {
    Resource.MAILBOXES: "mailbox",
    Resource.SENDING_DOMAINS: "sending domain",
    Resource.DAILY_SENDS: "daily send",
    Resource.DEDICATED_IPS: "dedicated IP",
    Resource.MEMBERS: "member",
}


class VpsSize(models.TextChoices):
    """Server size a plan provisions; `shared` means the tenant sends from pooled servers."""

    SHARED = "shared", "Shared servers"
    SMALL = "small", "Small"
    MEDIUM = "medium", "Medium"
    LARGE = "large", "Large"


class Feature(models.TextChoices):
    """Yes/no capabilities of a plan."""

    WARMUP = "warmup", "warm-up"
    API_ACCESS = "api_access", "API access"


@dataclass(frozen=True)
class PlanLimits:
    """A plan's limits and features, as stored in `Plan.limits`."""

    mailboxes: int
    sending_domains: int
    daily_sends: int
    dedicated_ips: int
    members: int
    vps_size: str
    vps_count: int
    warmup: bool
    api_access: bool

    def count(self, resource: Resource | str) -> int:
        return int(getattr(self, Resource(resource).value))

    def has(self, feature: Feature | str) -> bool:
        return bool(getattr(self, Feature(feature).value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_INT_FIELDS = (
    "mailboxes",
    "sending_domains",
    "daily_sends",
    "dedicated_ips",
    "members",
    "vps_count",
)
_BOOL_FIELDS = ("warmup", "api_access")


def parse_limits(raw: object) -> PlanLimits:
    """Validate a limits document; raises ValueError naming every bad key."""
    if not isinstance(raw, dict):
        raise ValueError("limits must be an object")
    names = {f.name for f in fields(PlanLimits)}
    problems: list[str] = []
    missing = sorted(names - set(raw))
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    unknown = sorted(set(raw) - names)
    if unknown:
        problems.append(f"unknown: {', '.join(unknown)}")
    for name in _INT_FIELDS:
        value = raw.get(name)
        # bool is an int subclass; `true` for a count is a mistake, not 1.
        if name in raw and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(f"{name} must be a whole number >= 0, got {value!r}")
    for name in _BOOL_FIELDS:
        if name in raw and not isinstance(raw[name], bool):
            problems.append(f"{name} must be true or false, got {raw[name]!r}")
    if "vps_size" in raw and raw["vps_size"] not in VpsSize.values:
        problems.append(
            f"vps_size must be one of {', '.join(VpsSize.values)}, got {raw['vps_size']!r}"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return PlanLimits(**{name: raw[name] for name in names})
