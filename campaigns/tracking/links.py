"""The tracking parts the sender puts into a message: the base URL, tracked links, the open
pixel, the unsubscribe URL and the unsubscribe address. Pure functions; the endpoints are in
campaigns.tracking.app.

Links are rewritten only in the HTML part's `href` attributes with an http(s) URL; `mailto:`,
anchors and anything else are left alone, and text parts keep their URLs as written (a text
part is what spam filters and careful readers look at). The pixel, for a campaign that tracks
opens, is appended before `</body>` (or at the end).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from django.conf import settings

from campaigns.tracking import tokens

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
MAX_URL_CHARS = 2000


def base_url(tracking_host: str | None, *, verified: bool) -> str:
    """The tenant's tracking host when it is verified (and custom hosts are on), in the form
    TRACKING_CUSTOM_HOST_URL gives (`https://{host}`; under DEBUG a `.localhost` name a browser
    reaches), else the platform's TRACKING_BASE_URL."""
    if tracking_host and verified and settings.TRACKING_CUSTOM_HOSTS:
        return str(settings.TRACKING_CUSTOM_HOST_URL).format(host=tracking_host).rstrip("/")
    return str(settings.TRACKING_BASE_URL)


def trackable(url: str) -> bool:
    """Only absolute http(s) URLs with a host become tracked links (and click destinations)."""
    if len(url) > MAX_URL_CHARS or any(c in url for c in "\r\n\t\x00 "):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def open_url(base: str, tenant_id: int, message_pk: int) -> str:
    return f"{base}/t/o/{tokens.sign(tokens.TokenKind.OPEN, tenant_id, message_pk)}.gif"


def click_url(base: str, tenant_id: int, message_pk: int, url: str) -> str:
    return f"{base}/t/c/{tokens.sign(tokens.TokenKind.CLICK, tenant_id, message_pk, url)}"


def unsubscribe_url(base: str, tenant_id: int, message_pk: int) -> str:
    return f"{base}/t/u/{tokens.sign(tokens.TokenKind.UNSUBSCRIBE, tenant_id, message_pk)}"


MAILTO_PREFIX = "unsubscribe-"


def unsubscribe_mailto(tenant_id: int, message_pk: int) -> str:
    """The address for `List-Unsubscribe: <mailto:...>`: mail to it unsubscribes the message's
    lead (campaigns.tracking.unsubscribe.unsubscribe_by_address)."""
    token = tokens.sign_mailto(tenant_id, message_pk)
    return f"{MAILTO_PREFIX}{token}@{settings.TRACKING_UNSUBSCRIBE_MAIL_DOMAIN}"


def track_html(
    html_body: str, base: str, tenant_id: int, message_pk: int, *, pixel: bool = True
) -> tuple[str, list[str]]:
    """The HTML with each trackable href replaced by a click URL and (unless `pixel` is False:
    the campaign does not track opens) the open pixel added, and the destinations found (in
    order, repeated ones once)."""
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        target = html.unescape(match.group(3)).strip()
        if not trackable(target):
            return match.group(0)
        if target not in found:
            found.append(target)
        tracked = click_url(base, tenant_id, message_pk, target)
        return f"{match.group(1)}{match.group(2)}{html.escape(tracked)}{match.group(2)}"

    rewritten = _HREF.sub(replace, html_body)
    if not pixel:
        return rewritten, found
    image = (
        f'<img src="{html.escape(open_url(base, tenant_id, message_pk))}" width="1" height="1" '
        'alt="" style="display:block;border:0;width:1px;height:1px">'
    )
    lower = rewritten.lower()
    at = lower.rfind("</body>")
    if at == -1:
        return rewritten + image, found
    return rewritten[:at] + image + rewritten[at:], found
