"""The composer writes MIME bytes itself (campaigns.sending.compose.flatten) for speed; these
hold it to what the stdlib's EmailMessage(policy=SMTP) builds from the same values, as a receiver
parses them, on plain and awkward input alike."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest

from campaigns.sending.compose import flatten

TOKEN = "AbCdEf0123456789" * 6

HEADERS = {
    "From": "Sam Sender <sam@mail.acme.test>",
    "To": "lead@example.com",
    "Reply-To": "sam@mail.acme.test",
    "Subject": "Hello Lee",
    "Message-ID": "<0123456789abcdef0123456789abcdef@mail.acme.test>",
    "Date": "Sun, 29 Nov 2026 12:00:00 +0000",
    "List-Unsubscribe": (
        f"<https://t.acme.test/t/u/{TOKEN}>, "
        f"<mailto:sam@mail.acme.test?subject=unsubscribe%20{TOKEN}>"
    ),
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def stdlib(headers: dict[str, str], text: str, html: str) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    for name, value in headers.items():
        message[name] = value
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes()


def parsed(raw: bytes) -> tuple[dict[str, str], list[tuple[str, str]]]:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert not message.defects
    headers = {name: str(message[name]) for name in HEADERS}
    parts = [(p.get_content_type(), p.get_content()) for p in message.iter_parts()]  # type: ignore[attr-defined]
    return headers, parts


CASES = {
    "plain": ({}, "Hi Lee,\nsee https://example.org/x", "<p>Hi Lee</p>"),
    "unicode": (
        {"From": "José Müller <jm@mail.acme.test>", "Subject": "Grüße, 李 — ✓"},
        "Grüße\r\nline = two\ttab \nend  ",
        "<p>李 = ✓</p>\n",
    ),
    "long subject": ({"Subject": "word " * 60 + "end"}, "x", "y"),
    "quoted name": ({"From": '"Acme, Inc." <sam@mail.acme.test>'}, ".\n.. dot\nFrom here", "<b>"),
    "encoded word typed in": ({"Subject": "=?utf-8?q?caf=C3=A9?= time"}, "a", "b"),
    "long lines": ({}, "x" * 500 + "\n" + "é" * 300, "<p>" + "y" * 1000 + "</p>"),
}


@pytest.mark.parametrize("case", CASES)
def test_it_builds_what_the_stdlib_builds(case: str) -> None:
    changes, text, html = CASES[case]
    headers = {**HEADERS, **changes}
    ours = flatten(headers, text, html)
    assert parsed(ours) == parsed(stdlib(headers, text, html))
    assert all(len(line) <= 998 for line in ours.split(b"\r\n"))
    assert b"\n" not in ours.replace(b"\r\n", b"")


def test_it_keeps_list_unsubscribe_readable() -> None:
    # Folded at the spaces, never as RFC 2047 encoded words (RFC 2369 receivers read the URL).
    raw = flatten(HEADERS, "x", "y")
    assert b"=?utf-8?" not in raw
    assert f"<https://t.acme.test/t/u/{TOKEN}>,".encode() in raw
