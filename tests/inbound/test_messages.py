"""Small hand-made messages: auto-replies, unsubscribe and reply, and hostile input."""

from __future__ import annotations

import time

from deliverability.inbound import Kind, classify
from deliverability.inbound.parse import MAX_BYTES, MAX_PARTS

OOO = b"""From: Ann <ann@example.com>
To: bob@sender.example
Subject: Automatic reply: Our offer
Auto-Submitted: auto-replied
Message-ID: <ooo-1@example.com>

I am out of the office until 12 May 2026 with limited access to email.
"""


def test_it_reads_an_rfc3834_out_of_office_with_its_return_date() -> None:
    verdict = classify(OOO)
    assert verdict.kind == Kind.AUTO_REPLY
    assert verdict.return_date == "12 May 2026"


def test_it_reads_an_unsubscribe_mail_with_its_token() -> None:
    raw = b"From: a@example.com\nTo: b@sender.example\nSubject: unsubscribe tok123\n\nplease\n"
    verdict = classify(raw)
    assert (verdict.kind, verdict.unsubscribe_token) == (Kind.UNSUBSCRIBE, "tok123")


def test_it_reads_a_human_reply() -> None:
    raw = (
        b"From: a@example.com\nTo: b@sender.example\nSubject: Re: Our offer\n"
        b"In-Reply-To: <m1@sender.example>\n\nSounds good, call me.\n"
    )
    assert classify(raw).kind == Kind.REPLY


def test_it_survives_malformed_mime() -> None:
    raw = (
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n"
        b'Content-Type: multipart/report; boundary="nope\n\n--other\n\x80\xff garbage\n'
    )
    verdict = classify(raw)
    assert verdict.kind in Kind


def test_it_truncates_a_20_mb_message_with_a_reason() -> None:
    raw = OOO + b"x" * (20 * 1024 * 1024)
    started = time.perf_counter()
    verdict = classify(raw)
    assert time.perf_counter() - started < 5
    assert verdict.kind == Kind.AUTO_REPLY
    assert any(note.startswith("truncated") and str(MAX_BYTES) in note for note in verdict.notes)


def test_it_stops_walking_thousands_of_parts() -> None:
    parts = b"".join(b"--b\nContent-Type: text/plain\n\npart %d\n" % i for i in range(5000))
    raw = (
        b"From: x@example.com\nSubject: many\nContent-Type: multipart/mixed; boundary=b\n\n"
        + parts
        + b"--b--\n"
    )
    verdict = classify(raw)
    assert verdict.kind == Kind.OTHER
    assert f"stopped after {MAX_PARTS} parts" in verdict.notes


def test_it_drops_nul_bytes_in_headers() -> None:
    raw = b"From: a\x00@example.com\nSubject: hi\x00there\n\nbody\x00\n"
    verdict = classify(raw)
    assert verdict.kind == Kind.OTHER
    assert "NUL bytes removed" in verdict.notes


def test_it_reads_an_unknown_charset_as_utf8() -> None:
    raw = (
        b"From: MAILER-DAEMON@x.example\nSubject: =?x-klingon?q?foo?=\n"
        b"Content-Type: text/plain; charset=x-klingon\n\n"
        b"<gone@example.org>: host mx said: 550 5.1.1 no such user\n"
    )
    verdict = classify(raw)
    assert verdict.kind == Kind.BOUNCE
    assert (verdict.recipients[0].address, verdict.recipients[0].status) == (
        "gone@example.org",
        "5.1.1",
    )


def test_it_survives_deep_nesting() -> None:
    raw = b"From: x@example.com\nSubject: deep\n"
    for depth in range(300):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (depth, depth)
    raw += b"Content-Type: text/plain\n\nend\n"
    assert classify(raw).kind in Kind
