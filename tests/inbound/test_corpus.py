"""The whole corpus, and a labelled sample from each family of sender (no database)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deliverability.inbound import Kind, classify

# file: (kind, first recipient, status, class) as the message states them.
LABELLED = {
    "rfc3464-01.eml": ("bounce", "userunknown@bouncehammer.jp", "5.1.1", "hard"),
    "lhost-postfix-01.eml": ("bounce", "r@p351355.pool.example.ne.jp", "5.1.1", "hard"),
    "lhost-postfix-49.eml": ("bounce", "kijitora-neko-nyaan@ntt.example.ne.jp", "4.0.0", "soft"),
    "lhost-exim-01.eml": ("bounce", "kijitora@example.ed.jp", "5.7.0", "soft"),
    "lhost-sendmail-01.eml": ("bounce", "userunknown@bouncehammer.jp", "5.1.1", "hard"),
    "lhost-qmail-01.eml": ("bounce", "kijitora@example.ne.jp", "5.1.1", "hard"),
    "lhost-gmail-01.eml": ("bounce", "userunknown@example.jp", "5.1.1", "hard"),
    "lhost-office365-01.eml": ("bounce", "kijitora@example.com", "5.1.10", "hard"),
    "lhost-amazonses-01.eml": ("bounce", "shironeko@example.co.jp", "5.0.0", "soft"),
    "lhost-amazonses-09.eml": ("bounce", "bounce@simulator.amazonses.com", "5.1.1", "hard"),
    "lhost-yahoo-01.eml": ("bounce", "kijitora@example.org", "5.1.1", "hard"),
    "rhost-google-02.eml": ("bounce", "neko-nyaan@example.org", "5.1.1", "hard"),
    "arf-01.eml": ("complaint", "redacted@example.net", None, None),
    "arf-22.eml": ("complaint", "kijitora@example.com", None, None),
    "lhost-amazonses-11.eml": ("complaint", "complaint@simulator.amazonses.com", None, None),
    "rfc3834-01.eml": ("auto_reply", None, None, None),
}


def _bsd(corpus: Path) -> list[Path]:
    return sorted((corpus / "bsd").iterdir())


def test_it_parses_every_corpus_file(corpus: Path) -> None:
    for path in [*_bsd(corpus), *sorted((corpus / "not").iterdir())]:
        verdict = classify(path.read_bytes())
        assert verdict.kind in Kind, path.name


@pytest.mark.parametrize("name", sorted(LABELLED))
def test_it_classifies_the_labelled_sample(corpus: Path, name: str) -> None:
    kind, address, status, klass = LABELLED[name]
    verdict = classify((corpus / "bsd" / name).read_bytes())
    assert verdict.kind == kind
    if address:
        first = verdict.recipients[0]
        assert (first.address, first.status, first.klass) == (address, status, klass)


def test_it_finds_the_failed_recipient_and_stated_status_in_95_percent(corpus: Path) -> None:
    bounces = found = stated = matched = 0
    for path in _bsd(corpus):
        if path.name.startswith(("arf-", "rfc3834-")):
            continue
        raw = path.read_bytes()
        verdict = classify(raw)
        bounces += 1
        found += bool(verdict.kind == Kind.BOUNCE and verdict.recipients)
        statuses = re.findall(rb"^Status:\s*([245]\.\d{1,3}\.\d{1,3})", raw, re.M | re.I)
        if statuses:
            stated += 1
            matched += bool(
                verdict.recipients and (verdict.recipients[0].status or "").encode() in statuses
            )
    assert found / bounces >= 0.95, (found, bounces)
    assert matched / stated >= 0.95, (matched, stated)


def test_it_takes_every_feedback_report_for_a_complaint(corpus: Path) -> None:
    for path in (corpus / "bsd").glob("arf-*"):
        raw = path.read_bytes()
        if b"feedback-report" in raw or b"X-HmXmrOriginalRecipient" in raw:
            assert classify(raw).kind == Kind.COMPLAINT, path.name


def test_it_reads_apples_unsubscribe_as_an_unsubscribe(corpus: Path) -> None:
    assert classify((corpus / "bsd" / "arf-26.eml").read_bytes()).kind == Kind.UNSUBSCRIBE


def test_it_takes_no_non_bounce_for_a_bounce(corpus: Path) -> None:
    for name in ("is-not-bounce-01.eml", "is-not-bounce-02.eml"):
        assert classify((corpus / "not" / name).read_bytes()).kind == Kind.OTHER


def test_it_reads_the_mailbox_full_notice_in_not_as_a_soft_bounce(corpus: Path) -> None:
    # rb-issue-368 is filed under not/ but is a real "Mailbox full" notice from a postmaster with
    # a null Return-Path: counted as a soft bounce (never suppressed at once), deliberately.
    verdict = classify((corpus / "not" / "rb-issue-368-bug.eml").read_bytes())
    assert verdict.kind == Kind.BOUNCE
    assert [(r.klass, r.reason) for r in verdict.recipients] == [("soft", "mailbox_full")]
