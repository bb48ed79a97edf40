"""The reputation score's arithmetic (docs/reputation.md, "Reputation score"): pure functions of
figures gathered by `reputation.services.scores`, so every part and its explanation is tested
without a database.

A score is 0-100: the points of four parts worth 100 together, less a penalty for blocklist
listings, clamped to 0-100.

| part | weight | full points when | none when |
| --- | --- | --- | --- |
| placement | 40 | all placed warm-up mail (7 days) reached the inbox | all went to spam |
| bounces | 20 | no bounce (7 days) | bounce rate >= BOUNCE_BAD (5 %) |
| complaints | 20 | no complaint (7 days) | complaint rate >= COMPLAINT_BAD (0.3 %) |
| dns (ptr for IPs) | 20 | SPF, DKIM and DMARC verify (the IP's PTR is set) | none does |
| blocklists | -60 | not listed | listed on lists weighing 100 or more |

A part without data (nothing placed, nothing sent, a connected mailbox's foreign domain) gets its
full points and says so: a new mailbox starts at 100 and moves with evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from reputation import conf

PLACEMENT_WEIGHT = 40
BOUNCE_WEIGHT = 20
COMPLAINT_WEIGHT = 20
DNS_WEIGHT = 20
LISTING_WEIGHT = 60  # the most a set of listings takes off
BOUNCE_BAD = 0.05  # bounce rate at which the part is worth nothing
COMPLAINT_BAD = 0.003  # Google's and Yahoo's 0.3 % line for bulk senders
DNS_RECORDS = ("spf", "dkim", "dmarc")


@dataclass(frozen=True)
class Part:
    """One part of a score: what was measured (`value`, None without data), how much it could
    give (`weight`; the listings' is what they can take), what it gave (`points`) and why."""

    name: str
    value: float | None
    weight: int
    points: int
    why: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Listed:
    """A live listing counted against a subject: the list's name and weight (1-100)."""

    list_name: str
    weight: int
    subject: str


@dataclass(frozen=True)
class Evidence:
    """What a subject's score is computed from (over the last 7 days)."""

    inbox: int = 0  # warm-up messages placed in the inbox
    spam: int = 0  # placed in spam (rescued)
    sent: int = 0  # sender rollups: delivered sends
    bounced: int = 0
    complained: int = 0
    dns: dict[str, bool] | None = None  # record purpose -> verifies; None: not ours to check
    ptr: bool | None = None  # IPs: the PTR is set (None: not an IP)
    listings: Sequence[Listed] = ()


@dataclass(frozen=True)
class Score:
    score: int
    parts: list[Part]

    def parts_json(self) -> list[dict[str, object]]:
        return [p.as_dict() for p in self.parts]


def _pct(share: float) -> str:
    return f"{round(share * 100, 1):g} %"


def placement(inbox: int, spam: int) -> Part:
    placed = inbox + spam
    if placed == 0:
        why = "no warm-up mail placed in the last 7 days"
        return Part("placement", None, PLACEMENT_WEIGHT, PLACEMENT_WEIGHT, why)
    share = inbox / placed
    why = f"{_pct(share)} of {placed} placed warm-up messages reached the inbox (7 days)"
    return Part(
        "placement", round(share, 4), PLACEMENT_WEIGHT, round(PLACEMENT_WEIGHT * share), why
    )


def _rate_part(name: str, count: int, base: int, weight: int, bad: float, noun: str) -> Part:
    if base == 0:
        return Part(name, None, weight, weight, "nothing sent in the last 7 days")
    rate = count / base
    points = round(weight * max(0.0, 1 - rate / bad))
    why = f"{count} {noun} of {base} ({_pct(rate)}; none left at {_pct(bad)}), 7 days"
    return Part(name, round(rate, 4), weight, points, why)


def bounces(sent: int, bounced: int) -> Part:
    return _rate_part("bounces", bounced, sent + bounced, BOUNCE_WEIGHT, BOUNCE_BAD, "bounced")


def complaints(sent: int, complained: int) -> Part:
    return _rate_part("complaints", complained, sent, COMPLAINT_WEIGHT, COMPLAINT_BAD, "complaints")


def dns(records: dict[str, bool] | None) -> Part:
    if records is None:
        why = "the domain is not one of this workspace's sending domains"
        return Part("dns", None, DNS_WEIGHT, DNS_WEIGHT, why)
    good = [r for r in DNS_RECORDS if records.get(r)]
    bad = [r.upper() for r in DNS_RECORDS if not records.get(r)]
    share = len(good) / len(DNS_RECORDS)
    why = "SPF, DKIM and DMARC verify" if not bad else f"{', '.join(bad)} do not verify"
    return Part("dns", round(share, 4), DNS_WEIGHT, round(DNS_WEIGHT * share), why)


def ptr(is_set: bool) -> Part:
    if is_set:
        return Part("ptr", 1.0, DNS_WEIGHT, DNS_WEIGHT, "the PTR record is set")
    return Part("ptr", 0.0, DNS_WEIGHT, 0, "no PTR record for the IP")


def blocklists(listings: Sequence[Listed]) -> Part:
    if not listings:
        return Part("blocklists", 0, LISTING_WEIGHT, 0, "not on any blocklist we check")
    total = sum(item.weight for item in listings)
    penalty = min(LISTING_WEIGHT, math.ceil(total * LISTING_WEIGHT / 100))
    names = ", ".join(f"{item.subject} on {item.list_name}" for item in listings)
    return Part("blocklists", total, LISTING_WEIGHT, -penalty, f"listed: {names}")


def score(evidence: Evidence) -> Score:
    """The score of one subject and the parts it is made of."""
    parts = [
        placement(evidence.inbox, evidence.spam),
        bounces(evidence.sent, evidence.bounced),
        complaints(evidence.sent, evidence.complained),
        ptr(evidence.ptr) if evidence.ptr is not None else dns(evidence.dns),
        blocklists(evidence.listings),
    ]
    total = max(0, min(100, sum(p.points for p in parts)))
    return Score(total, parts)


# --- What a score does to the campaign allowance -------------------------------------------------
FULL_SCORE = conf.FULL_SCORE  # at or above: campaigns get their whole allowance
# The lowest share: pausing is automatic protection's and the blocklists' job, not the score's.
MIN_SHARE = conf.MIN_SHARE_PERCENT / 100


def allowance_share(value: int) -> float:
    """The share of its campaign allowance a mailbox with this score keeps: all of it from
    FULL_SCORE, below it the score's tens (62 -> 0.6), never under MIN_SHARE."""
    if value >= FULL_SCORE:
        return 1.0
    return max(MIN_SHARE, (value // 10) / 10)


def allowance_note(value: int, share: float) -> str:
    return f"reputation {value}: allowance x{share:g}"


__all__ = [
    "Evidence",
    "Listed",
    "Part",
    "Score",
    "allowance_note",
    "allowance_share",
    "score",
]
