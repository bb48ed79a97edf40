"""The machine-open and machine-click rules, one by one."""

from __future__ import annotations

import pytest

from campaigns.tracking.machine import classify

SENT = 1_700_000_000.0
LATER = SENT + 3600
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


def _why(kind: str, ua: str = CHROME, ip: str = "198.51.100.7", *, head: bool = False,
         at: float = LATER) -> str:  # fmt: skip
    return classify(kind, user_agent=ua, ip=ip, head=head, at=at, sent_at=SENT)


def test_it_takes_a_later_browser_open_or_click_for_a_person() -> None:
    assert _why("o") == "" and _why("c") == ""
    assert classify("c", user_agent=CHROME, ip="", head=False, at=LATER, sent_at=None) == ""


@pytest.mark.parametrize(
    ("kind", "ua", "ip", "reason"),
    [
        ("o", "Mozilla/5.0", "198.51.100.7", "proxy: Apple Mail Privacy Protection"),
        ("o", CHROME, "17.58.101.4", "proxy: Apple Mail Privacy Protection"),
        ("o", "", "1.2.3.4", "no user agent"),
        ("c", "Mozilla/5.0 (compatible; BingPreview/1.0b)", "1.2.3.4",
         "scanner: Microsoft Safe Links (BingPreview)"),
        ("c", "Barracuda Sentinel (EE)", "1.2.3.4", "scanner: Barracuda"),
        ("c", "python-requests/2.31", "1.2.3.4", "scanner: python-requests"),
        ("o", "Mimecast-Agent", "1.2.3.4", "scanner: Mimecast"),
    ],
)  # fmt: skip
def test_it_flags_proxies_and_scanners(kind: str, ua: str, ip: str, reason: str) -> None:
    assert _why(kind, ua, ip) == reason


@pytest.mark.parametrize(
    "ua",
    ["Mozilla/5.0 (Windows NT 5.1) GoogleImageProxy", "YahooMailProxy; https://help.yahoo.com"],
)
def test_it_counts_a_webmail_image_proxy_open_as_a_person(ua: str) -> None:
    # Gmail and Yahoo fetch images through their proxies when the reader opens the message (not
    # at delivery, as Apple's prefetcher does): a person, unless it comes right after sending.
    assert _why("o", ua, "66.249.1.1") == ""
    assert _why("o", ua, "66.249.1.1", at=SENT + 1) == "open within 3s of sending"


def test_it_flags_head_requests_and_hits_right_after_sending() -> None:
    assert _why("c", head=True) == "HEAD request"
    assert _why("o", at=SENT + 1) == "open within 3s of sending"
    assert _why("c", at=SENT + 10) == "click within 15s of sending"
    assert _why("c", at=SENT + 16) == ""


def test_it_does_not_take_a_click_without_a_user_agent_for_a_proxy_open() -> None:
    # Proxy rules are about images; an empty user agent on a click is only suspicious by timing.
    assert _why("c", "") == ""
