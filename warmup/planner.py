"""Pairing and the day's spread (docs/warmup.md, "The day's plan"): pure functions, no database,
so the bench (bench/warmup.py) measures exactly what the beat job runs.

`pair` gives every pool member an ordered list of partners for the day. The members are shuffled
into a ring and every sender looks at the members a fixed set of random offsets ahead of it;
since each offset is a permutation of the ring, every member receives about as much as it
sends. Of those candidates a sender never takes itself or a member of its own domain, and takes
members of other tenants on other IPs first, then other tenants on the same IP (or other IPs of
its own tenant), then the rest.

`spread` places a day's messages over the working hours of the mailbox's timezone: equal slots,
a random moment in each.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# How many candidates a sender looks at per partner it needs.
LOOK_AHEAD = 3


@dataclass(frozen=True)
class Member:
    """What pairing knows of a pool member (penguinmails.indexes.active_pool)."""

    id: int
    tenant_id: int
    domain: str
    ip: str | None


def _rank(a: Member, b: Member) -> int:
    """0: another tenant on another IP (best); 1: one of the two shared; 2: both."""
    same_ip = a.ip is not None and a.ip == b.ip
    return int(a.tenant_id == b.tenant_id) + int(same_ip)


def pair(members: Sequence[Member], partners: int, rng: random.Random) -> dict[int, list[int]]:
    """Member id -> up to `partners` partner ids for the day, best first; never itself, never its
    own domain."""
    n = len(members)
    if n < 2 or partners <= 0:
        return {m.id: [] for m in members}
    ring = list(members)
    rng.shuffle(ring)
    offsets = rng.sample(range(1, n), min(n - 1, partners * LOOK_AHEAD))
    out: dict[int, list[int]] = {}
    for position, sender in enumerate(ring):
        ranked: tuple[list[int], list[int], list[int]] = ([], [], [])
        for offset in offsets:
            other = ring[(position + offset) % n]
            if other.domain == sender.domain:
                continue
            ranked[_rank(sender, other)].append(other.id)
            if len(ranked[0]) >= partners:
                break
        out[sender.id] = (ranked[0] + ranked[1] + ranked[2])[:partners]
    return out


def spread(
    day: date,
    zone: str,
    count: int,
    rng: random.Random,
    *,
    start_hour: int = 8,
    end_hour: int = 19,
) -> list[datetime]:
    """`count` moments on `day` between start_hour and end_hour in timezone `zone` (aware,
    sorted): the window cut into equal slots, a random moment in each."""
    if count <= 0:
        return []
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(start_hour), tzinfo=tz)
    window = (end_hour - start_hour) * 3600
    slot = window / count
    return [start + timedelta(seconds=slot * i + rng.random() * slot) for i in range(count)]


def partners_for(chosen: list[int], volume: int) -> list[int]:
    """`volume` partners from a member's list for the day, going round it when the volume is
    larger than the list (its target above the pool's partner count)."""
    if not chosen:
        return []
    return [chosen[i % len(chosen)] for i in range(volume)]


__all__ = ["LOOK_AHEAD", "Member", "pair", "partners_for", "spread"]
