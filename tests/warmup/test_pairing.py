"""Pairing (warmup.planner.pair, pure): never itself or its own domain, other tenants and IPs
first, every member receiving about as much as it sends; the day's spread in the timezone."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

from warmup.planner import Member, pair, partners_for, spread


def _pool(n: int, *, tenants: int = 5, domains_per_tenant: int = 4, ips: int = 10) -> list[Member]:
    return [
        Member(
            id=i + 1,
            tenant_id=i % tenants,
            domain=f"d{i % tenants}-{(i // tenants) % domains_per_tenant}.test",
            ip=f"10.0.0.{i % ips}",
        )
        for i in range(n)
    ]


def test_never_itself_nor_its_own_domain_and_spread_across_tenants() -> None:
    members = _pool(500)
    by_id = {m.id: m for m in members}
    pairs = pair(members, 20, random.Random(1))
    assert set(pairs) == set(by_id)
    received: Counter[int] = Counter()
    for sender_id, partners in pairs.items():
        sender = by_id[sender_id]
        assert len(partners) == 20 and len(set(partners)) == 20
        for p in partners:
            assert p != sender_id
            assert by_id[p].domain != sender.domain
            assert by_id[p].tenant_id != sender.tenant_id  # plenty of others: always another
            received[p] += 1
        assert len({by_id[p].tenant_id for p in partners}) >= 3  # spread, not one neighbour
    # Every member receives about as much as it sends.
    assert min(received.values()) >= 10 and max(received.values()) <= 40


def test_other_ips_come_first_and_a_lone_tenant_still_pairs_across_its_domains() -> None:
    members = [Member(1, 1, "a.test", "1.1.1.1"), Member(2, 2, "b.test", "1.1.1.1"),
               Member(3, 2, "c.test", "2.2.2.2"), Member(4, 1, "a.test", "2.2.2.2")]  # fmt: skip
    pairs = pair(members, 3, random.Random(3))
    assert pairs[1][0] == 3  # other tenant, other IP first; then other tenant, same IP
    assert pairs[1] == [3, 2]  # never 4: its own domain
    lone = [Member(1, 1, "a.test", None), Member(2, 1, "b.test", None)]
    assert pair(lone, 5, random.Random(0)) == {1: [2], 2: [1]}
    assert pair([Member(1, 1, "a.test", None)], 5, random.Random(0)) == {1: []}
    same_domain = [Member(1, 1, "a.test", None), Member(2, 2, "a.test", None)]
    assert pair(same_domain, 5, random.Random(0)) == {1: [], 2: []}


def test_partners_go_round_the_list_when_the_volume_is_larger() -> None:
    assert partners_for([7, 8, 9], 7) == [7, 8, 9, 7, 8, 9, 7]
    assert partners_for([], 4) == []


def test_the_day_is_spread_over_working_hours_in_the_mailbox_timezone() -> None:
    day = date(2026, 3, 2)
    times = spread(day, "Asia/Tokyo", 20, random.Random(2), start_hour=8, end_hour=18)
    local = [t.astimezone(ZoneInfo("Asia/Tokyo")) for t in times]
    assert times == sorted(times) and len(set(times)) == 20
    assert all(t.date() == day and 8 <= t.hour < 18 for t in local)
    hours = {t.hour for t in local}
    assert len(hours) == 10  # every working hour has some: spread, not bunched
    assert spread(day, "UTC", 0, random.Random(2)) == []
