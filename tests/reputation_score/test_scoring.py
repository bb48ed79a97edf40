"""The score's arithmetic (reputation.scoring): each part, its explanation, the clamp, and what
a score does to the campaign allowance."""

from __future__ import annotations

from reputation import scoring
from reputation.scoring import Evidence, Listed


def _parts(evidence: Evidence) -> dict[str, scoring.Part]:
    return {p.name: p for p in scoring.score(evidence).parts}


def test_a_mailbox_without_evidence_scores_100_and_says_why() -> None:
    result = scoring.score(Evidence())
    assert result.score == 100
    parts = {p.name: p for p in result.parts}
    assert parts["placement"].why == "no warm-up mail placed in the last 7 days"
    assert parts["bounces"].why == "nothing sent in the last 7 days"
    assert parts["dns"].value is None and parts["dns"].points == 20
    assert parts["blocklists"].points == 0


def test_spam_placement_costs_its_share_of_40_points() -> None:
    parts = _parts(Evidence(inbox=15, spam=5))
    assert (parts["placement"].value, parts["placement"].points) == (0.75, 30)
    assert parts["placement"].why == (
        "75 % of 20 placed warm-up messages reached the inbox (7 days)"
    )
    assert scoring.score(Evidence(inbox=15, spam=5)).score == 90


def test_bounces_and_complaints_fall_to_nothing_at_their_bad_rates() -> None:
    parts = _parts(Evidence(sent=95, bounced=5, complained=1))
    assert parts["bounces"].points == 0  # 5 % of 100 sends
    assert parts["complaints"].value == round(1 / 95, 4) and parts["complaints"].points == 0
    half = _parts(Evidence(sent=975, bounced=25))
    assert half["bounces"].points == 10  # 2.5 %: half of 20
    assert "25 bounced of 1000 (2.5 %" in half["bounces"].why


def test_dns_counts_spf_dkim_and_dmarc_and_names_the_broken_ones() -> None:
    parts = _parts(Evidence(dns={"spf": True, "dkim": False, "dmarc": True}))
    assert parts["dns"].points == 13 and parts["dns"].why == "DKIM do not verify"
    all_ok = _parts(Evidence(dns={"spf": True, "dkim": True, "dmarc": True}))
    assert all_ok["dns"].points == 20 and all_ok["dns"].why == "SPF, DKIM and DMARC verify"
    ip = _parts(Evidence(ptr=False))
    assert "dns" not in ip and ip["ptr"].points == 0


def test_listings_take_up_to_60_points_by_weight() -> None:
    spamhaus = Listed("Spamhaus ZEN", 100, "192.0.2.1")
    psbl = Listed("PSBL", 30, "192.0.2.1")
    assert _parts(Evidence(listings=[psbl]))["blocklists"].points == -18
    both = scoring.score(Evidence(listings=[spamhaus, psbl]))
    assert both.score == 40
    assert both.parts[-1].why == "listed: 192.0.2.1 on Spamhaus ZEN, 192.0.2.1 on PSBL"
    worst = Evidence(inbox=0, spam=10, sent=90, bounced=10, complained=5, listings=[spamhaus])
    assert scoring.score(worst).score == 0  # clamped, never negative


def test_a_falling_score_shrinks_the_allowance_share_before_anything_pauses() -> None:
    assert scoring.allowance_share(100) == 1.0
    assert scoring.allowance_share(80) == 1.0
    assert scoring.allowance_share(79) == 0.7
    assert scoring.allowance_share(62) == 0.6
    assert scoring.allowance_share(3) == 0.1  # never 0: pausing is not the score's job
    assert scoring.allowance_note(62, 0.6) == "reputation 62: allowance x0.6"


def test_parts_serialise_with_name_value_weight_points_and_why() -> None:
    body = scoring.score(Evidence(inbox=1, spam=1)).parts_json()
    assert set(body[0]) == {"name", "value", "weight", "points", "why"}
    assert [p["name"] for p in body] == ["placement", "bounces", "complaints", "dns", "blocklists"]
