"""Plan one warm-up day for 10,000 pool mailboxes (issue 13): pairing and the day's spread, as
the beat job (warmup.services.plans) runs them, beside a bare `random.shuffle` pairing with the
same spread in the same process. Pure Python over the public index's rows: no database.

Goal: under 10 s. Run: `make bench` (or `.venv/bin/python bench/warmup.py`).
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from warmup.planner import Member, pair, partners_for, spread  # noqa: E402

MEMBERS = int(os.environ.get("BENCH_WARMUP_MEMBERS", "10000"))
PARTNERS = 40
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
DAY = date(2026, 3, 2)


def pool(n: int, rng: random.Random) -> list[Member]:
    """n members over n/20 tenants, 3 domains each, 200 IPs."""
    tenants = max(1, n // 20)
    return [
        Member(i + 1, i % tenants, f"d{i % tenants}-{rng.randrange(3)}.test", f"10.0.{i % 200}.1")
        for i in range(n)
    ]


def volumes(n: int, rng: random.Random) -> list[int]:
    """A mixed pool: mailboxes on every day of a 2,4,...,40 ramp, a third at maintenance (5)."""
    return [5 if rng.random() < 0.33 else min(40, 2 + 2 * rng.randrange(20)) for _ in range(n)]


def schedule(pairs: dict[int, list[int]], members: list[Member], vols: list[int]) -> int:
    rng = random.Random(7)
    total = 0
    for i, member in enumerate(members):
        chosen = partners_for(pairs[member.id], vols[i])
        total += len(spread(DAY, ZONES[i % len(ZONES)], len(chosen), rng))
    return total


def bare(members: list[Member], k: int, rng: random.Random) -> dict[int, list[int]]:
    """The baseline: shuffle, each takes the next k (no domain, tenant or IP rule)."""
    ring = [m.id for m in members]
    rng.shuffle(ring)
    n = len(ring)
    return {ring[p]: [ring[(p + o) % n] for o in range(1, k + 1)] for p in range(n)}


def run(label: str, pairing: object, members: list[Member], vols: list[int]) -> float:
    start = time.perf_counter()
    pairs = pairing(members, PARTNERS, random.Random(1))  # type: ignore[operator]
    paired = time.perf_counter()
    messages = schedule(pairs, members, vols)
    end = time.perf_counter()
    print(
        f"{label}: {len(members):,} mailboxes, {messages:,} messages: pairing "
        f"{paired - start:.2f} s, schedule {end - paired:.2f} s, total {end - start:.2f} s"
    )
    return end - start


def main() -> None:
    rng = random.Random(0)
    members = pool(MEMBERS, rng)
    vols = volumes(MEMBERS, rng)
    ours = run("warm-up planner", pair, members, vols)
    base = run("bare shuffle   ", bare, members, vols)
    pairs = pair(members, PARTNERS, random.Random(1))
    by_id = {m.id: m for m in members}
    own_domain = sum(by_id[p].domain == by_id[s].domain for s, ps in pairs.items() for p in ps)
    same_tenant = sum(
        by_id[p].tenant_id == by_id[s].tenant_id for s, ps in pairs.items() for p in ps
    )
    print(f"planner pairs with its own domain: {own_domain}, same tenant: {same_tenant}")
    print(
        f"goal under 10 s: {'met' if ours < 10 else 'MISSED'} ({ours:.2f} s; baseline {base:.2f} s)"
    )
    if ours >= 10:
        sys.exit(1)


if __name__ == "__main__":
    main()
