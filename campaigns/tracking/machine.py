"""Which opens and clicks a machine made: mail-privacy proxies that fetch every image, link
scanners that follow every link, and anything arriving too soon after sending to be a person.

`classify` returns the reason (stored in MessageEvent.machine_reason) or "" for a person. The
rules, in order (docs/tracking.md lists them with their sources):

1. A HEAD request: browsers GET; link checkers and scanners often HEAD first.
2. A known scanner or bot user agent (security gateways, link previews, HTTP libraries).
3. Opens only: a mail-privacy proxy: Apple Mail Privacy Protection (Apple's 17.0.0.0/8
   network, or the bare `Mozilla/5.0` user agent its prefetcher sends), Gmail's and Yahoo's
   image proxies.
4. Opens only: no user agent at all.
5. Too soon after sending: an open within TRACKING_MACHINE_OPEN_SECONDS, a click within
   TRACKING_MACHINE_CLICK_SECONDS of `sent_at` (gateways fetch at delivery, people later).

A click without an earlier open is not a rule: images are blocked by default in many clients.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from django.conf import settings

from campaigns.tracking.tokens import TokenKind

OPEN, CLICK = TokenKind.OPEN, TokenKind.CLICK

# Security gateways and link-preview bots (case-insensitive substrings, matched as one regex).
_SCANNERS = {
    "bingpreview": "Microsoft Safe Links (BingPreview)",
    "barracuda": "Barracuda",
    "mimecast": "Mimecast",
    "proofpoint": "Proofpoint",
    "ppops-": "Proofpoint",
    "symantec": "Symantec",
    "messagelabs": "Symantec MessageLabs",
    "trendmicro": "Trend Micro",
    "trend micro": "Trend Micro",
    "sophos": "Sophos",
    "fireeye": "FireEye",
    "forcepoint": "Forcepoint",
    "ironport": "Cisco IronPort",
    "zscaler": "Zscaler",
    "avanan": "Avanan",
    "checkpoint": "Check Point",
    "headlesschrome": "headless Chrome",
    "phantomjs": "PhantomJS",
    "python-requests": "python-requests",
    "python-urllib": "Python urllib",
    "aiohttp": "aiohttp",
    "curl/": "curl",
    "wget/": "Wget",
    "go-http-client": "Go HTTP client",
    "okhttp": "OkHttp",
    "java/": "Java HTTP client",
    "libwww-perl": "libwww-perl",
    "slackbot": "Slack link preview",
    "facebookexternalhit": "Facebook link preview",
    "linkedinbot": "LinkedIn link preview",
    "twitterbot": "Twitter link preview",
    "whatsapp": "WhatsApp link preview",
    "skypeuripreview": "Skype link preview",
    "bot/": "a bot",
    "crawler": "a crawler",
    "spider": "a spider",
}
_SCANNER_RE = re.compile("|".join(re.escape(k) for k in _SCANNERS), re.IGNORECASE)
# Apple's own network; Mail Privacy Protection prefetches from its egress ranges within it.
_APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
_APPLE_BARE_UA = "Mozilla/5.0"


@lru_cache(maxsize=4096)
def _apple_ip(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in _APPLE_NETWORKS)


def classify(
    kind: str,
    *,
    user_agent: str,
    ip: str,
    head: bool,
    at: float,
    sent_at: float | None,
) -> str:
    """Why a machine made this open (`kind` OPEN) or click (CLICK), or "" for a person."""
    if head:
        return "HEAD request"
    ua = user_agent.strip()
    found = _SCANNER_RE.search(ua)
    if found:
        return f"scanner: {_SCANNERS[found.group(0).lower()]}"
    if kind == OPEN:
        if ua == _APPLE_BARE_UA or (ip and _apple_ip(ip)):
            return "proxy: Apple Mail Privacy Protection"
        if not ua:
            return "no user agent"
    if sent_at is not None:
        limit = (
            settings.TRACKING_MACHINE_OPEN_SECONDS
            if kind == OPEN
            else settings.TRACKING_MACHINE_CLICK_SECONDS
        )
        if at - sent_at < limit:
            what = "open" if kind == OPEN else "click"
            return f"{what} within {limit}s of sending"
    return ""
