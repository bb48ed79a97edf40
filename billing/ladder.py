"""The seeded plan ladder (seed: "Subscription-Based Resource Allocation": each tier maps to a VPS
size and an IP count, priced so infrastructure costs stay below revenue).

Used by the data migration and by `seed_ladder()` when a flushed database has no plans at all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from billing.limits import parse_limits

LADDER: list[dict[str, Any]] = [
    {
        "slug": "starter",
        "name": "Starter",
        "monthly_price": Decimal("49.00"),
        "sort_order": 10,
        "limits": {
            "mailboxes": 5,
            "sending_domains": 2,
            "daily_sends": 500,
            "dedicated_ips": 0,
            "members": 5,
            "vps_size": "shared",
            "vps_count": 0,
            "warmup": False,
            "api_access": True,
        },
    },
    {
        "slug": "growth",
        "name": "Growth",
        "monthly_price": Decimal("149.00"),
        "sort_order": 20,
        "limits": {
            "mailboxes": 25,
            "sending_domains": 10,
            "daily_sends": 5000,
            "dedicated_ips": 1,
            "members": 10,
            "vps_size": "small",
            "vps_count": 1,
            "warmup": True,
            "api_access": True,
        },
    },
    {
        "slug": "scale",
        "name": "Scale",
        "monthly_price": Decimal("449.00"),
        "sort_order": 30,
        "limits": {
            "mailboxes": 100,
            "sending_domains": 40,
            "daily_sends": 25000,
            "dedicated_ips": 4,
            "members": 25,
            "vps_size": "medium",
            "vps_count": 2,
            "warmup": True,
            "api_access": True,
        },
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "monthly_price": Decimal("1499.00"),
        "sort_order": 40,
        "limits": {
            "mailboxes": 500,
            "sending_domains": 200,
            "daily_sends": 150000,
            "dedicated_ips": 16,
            "members": 100,
            "vps_size": "large",
            "vps_count": 4,
            "warmup": True,
            "api_access": True,
        },
    },
]


def seed_ladder(plan_model: Any) -> None:
    """Create or update the seeded plans by slug (`plan_model`: the real or historical model)."""
    for entry in LADDER:
        parse_limits(entry["limits"])
        defaults = {k: v for k, v in entry.items() if k != "slug"}
        try:
            with transaction.atomic():
                plan_model.objects.update_or_create(slug=entry["slug"], defaults=defaults)
        except IntegrityError:
            # Two processes seeding at once: the other one created it.
            pass
