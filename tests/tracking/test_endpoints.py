"""The tracking endpoints through the WSGI entry point (penguinmails.wsgi.application, any
Host): bad tokens of every kind get 404 and record nothing; clicks go only to the URL signed for
that message; a GET on the unsubscribe URL changes nothing and the POST does, once."""

from __future__ import annotations

import base64

import pytest
from django.db.models import Sum
from django_tenants.utils import schema_context

from campaigns.models import (
    CampaignDailyStat,
    CampaignLead,
    EnrollmentStatus,
    Lead,
    LeadStatus,
    Message,
    MessageEvent,
    Suppression,
)
from campaigns.tracking import buffer, links, tokens
from campaigns.tracking.app import GIF
from campaigns.tracking.unsubscribe import UnknownMessage, unsubscribe_by_address
from tests.conftest import Cast
from tests.tracking.conftest import Sent, call, path_of

pytestmark = pytest.mark.django_db
BASE = "https://track.customer.test"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _retarget(token: str, old: bytes, new: bytes) -> str:
    """The token with `old` replaced by `new` in its payload and the MAC kept (a forgery)."""
    payload, mac = token.split(".")
    raw = _unb64(payload)
    assert old in raw
    return f"{_b64(raw.replace(old, new))}.{mac}"


def _waiting() -> int:
    return buffer.depth()["waiting"]


def test_it_serves_the_pixel_and_buffers_the_open(sent: Sent) -> None:
    response = call("GET", links.open_url(BASE, sent.tenant.pk, sent.pk))
    assert response.status == 200
    assert response.body == GIF and len(GIF) == 43
    assert response.headers["Content-Type"] == "image/gif"
    assert "no-store" in response.headers["Cache-Control"]
    assert _waiting() == 1


def test_it_redirects_a_click_to_the_signed_url(sent: Sent) -> None:
    url = links.click_url(BASE, sent.tenant.pk, sent.pk, "https://example.com/pricing?a=1&b=2")
    response = call("GET", url + "?url=https://evil.test/")  # a query string changes nothing
    assert response.status == 302
    assert response.headers["Location"] == "https://example.com/pricing?a=1&b=2"
    assert _waiting() == 1


def test_it_refuses_tampered_tokens_everywhere(sent: Sent, cast: Cast) -> None:
    tenant, other = str(sent.tenant.pk).encode(), str(cast.other_tenant.pk).encode()
    pixel = path_of(links.open_url(BASE, sent.tenant.pk, sent.pk))[len("/t/o/") : -len(".gif")]
    click = path_of(links.click_url(BASE, sent.tenant.pk, sent.pk, "https://example.com/"))
    click = click[len("/t/c/") :]
    unsub = path_of(links.unsubscribe_url(BASE, sent.tenant.pk, sent.pk))[len("/t/u/") :]
    forged_mac = pixel.split(".")[0] + "." + _b64(b"\x00" * 16)
    cases = [
        ("GET", f"/t/o/{_retarget(pixel, b'|' + tenant + b'|', b'|' + other + b'|')}.gif"),
        ("GET", f"/t/o/{forged_mac}.gif"),
        ("GET", f"/t/o/{pixel[:-2]}.gif"),
        ("GET", f"/t/o/{pixel}"),  # no .gif
        ("GET", "/t/o/garbage.gif"),
        ("GET", f"/t/c/{_retarget(click, b'example.com', b'evil.test/x')}"),
        ("GET", f"/t/c/{_retarget(click, b'|' + tenant + b'|', b'|' + other + b'|')}"),
        ("GET", f"/t/c/{pixel}"),  # a pixel token is no click token
        ("GET", f"/t/u/{_retarget(unsub, b'|' + tenant + b'|', b'|' + other + b'|')}"),
        ("POST", f"/t/u/{_retarget(unsub, b'|' + tenant + b'|', b'|' + other + b'|')}"),
        ("POST", f"/t/u/{click}"),
        ("GET", "/t/x/whatever"),
    ]
    for method, path in cases:
        response = call(method, BASE + path, body=b"List-Unsubscribe=One-Click")
        assert response.status == 404, path
        assert "Location" not in response.headers
    # The pixel's 404 is still an image, so no mail client shows a broken one.
    assert call("GET", f"{BASE}/t/o/garbage.gif").body == GIF
    assert _waiting() == 0
    with schema_context(sent.tenant.schema_name):
        assert Message.objects.get(pk=sent.pk).unsubscribed_at is None


def test_it_refuses_expired_tokens(sent: Sent) -> None:
    old = tokens.today() - 366
    for path in (
        f"/t/o/{tokens.sign('o', sent.tenant.pk, sent.pk, day=old)}.gif",
        f"/t/c/{tokens.sign('c', sent.tenant.pk, sent.pk, 'https://example.com/', day=old)}",
        f"/t/u/{tokens.sign('u', sent.tenant.pk, sent.pk, day=old)}",
    ):
        assert call("GET", BASE + path).status == 404, path
    assert _waiting() == 0
    fresh = tokens.sign("o", sent.tenant.pk, sent.pk, day=tokens.today() - 364)
    assert call("GET", f"{BASE}/t/o/{fresh}.gif").status == 200


def test_it_never_redirects_to_a_javascript_or_hostless_destination(sent: Sent) -> None:
    # Even correctly signed: the sender never signs these, and the endpoint checks again.
    for url in (
        "javascript:alert(document.cookie)",
        "JavaScript://example.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.test/",
        "http:///no-host",
        "ftp://example.com/file",
        "https://evil.test/\r\nSet-Cookie: x=1",
    ):
        token = tokens.sign("c", sent.tenant.pk, sent.pk, url)
        response = call("GET", f"{BASE}/t/c/{token}")
        assert response.status == 404, url
        assert "Location" not in response.headers
    assert _waiting() == 0


def test_it_binds_a_token_to_its_tenant(sent: Sent, cast: Cast) -> None:
    # A good token of globex naming acme's message id: it is globex's message id, never acme's.
    from campaigns.tracking.flush import flush

    token = tokens.sign("o", cast.other_tenant.pk, sent.pk)
    assert call("GET", f"{BASE}/t/o/{token}.gif").status == 200
    result = flush()
    assert (result.written, result.dropped) == (0, 1)
    with schema_context(sent.tenant.schema_name):
        assert Message.objects.get(pk=sent.pk).open_count == 0
        assert not MessageEvent.objects.exists()
    with pytest.raises(UnknownMessage):
        from campaigns.tracking.unsubscribe import unsubscribe

        unsubscribe(cast.other_tenant.pk, sent.pk)
    with schema_context(sent.tenant.schema_name):
        assert Message.objects.get(pk=sent.pk).unsubscribed_at is None


def _unsubscribed(sent: Sent) -> dict[str, object]:
    with schema_context(sent.tenant.schema_name):
        stats = CampaignDailyStat.objects.filter(campaign_id=sent.campaign_pk)
        return {
            "message": Message.objects.get(pk=sent.pk).unsubscribed_at is not None,
            "lead": Lead.objects.get(pk=sent.lead_pk).status,
            "suppressed": Suppression.objects.filter(value="ada@example.com").count(),
            "enrollment": CampaignLead.objects.get(lead_id=sent.lead_pk).status,
            "events": MessageEvent.objects.filter(kind="unsubscribe").count(),
            "rollup": stats.aggregate(n=Sum("unsubscribed"))["n"] or 0,
        }


NOT_UNSUBSCRIBED = {
    "message": False,
    "lead": LeadStatus.ACTIVE,
    "suppressed": 0,
    "enrollment": EnrollmentStatus.ACTIVE,
    "events": 0,
    "rollup": 0,
}
UNSUBSCRIBED = {
    "message": True,
    "lead": LeadStatus.UNSUBSCRIBED,
    "suppressed": 1,
    "enrollment": EnrollmentStatus.STOPPED,
    "events": 1,
    "rollup": 1,
}


def test_it_shows_a_confirmation_on_get_and_unsubscribes_nothing(sent: Sent) -> None:
    url = links.unsubscribe_url(BASE, sent.tenant.pk, sent.pk)
    for method in ("GET", "HEAD", "GET"):
        response = call(method, url)
        assert response.status == 200
    page = call("GET", url).text
    assert '<form method="post"' in page and f'action="{path_of(url)}"' in page
    assert _unsubscribed(sent) == NOT_UNSUBSCRIBED


def test_it_unsubscribes_on_the_one_click_post_once(sent: Sent) -> None:
    url = links.unsubscribe_url(BASE, sent.tenant.pk, sent.pk)
    # RFC 8058: the mail provider POSTs this body to the List-Unsubscribe URL.
    response = call("POST", url, body=b"List-Unsubscribe=One-Click")
    assert response.status == 200
    assert "You are unsubscribed" in response.text
    assert _unsubscribed(sent) == UNSUBSCRIBED
    with schema_context(sent.tenant.schema_name):
        assert CampaignLead.objects.get(lead_id=sent.lead_pk).stop_reason == "unsubscribed"
    again = call("POST", url, body=b"List-Unsubscribe=One-Click")
    assert again.status == 200
    assert _unsubscribed(sent) == UNSUBSCRIBED  # nothing counted twice


def test_it_unsubscribes_from_the_pages_own_form(sent: Sent) -> None:
    url = links.unsubscribe_url(BASE, sent.tenant.pk, sent.pk)
    page = call("GET", url).text
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert call("POST", url, body=b"List-Unsubscribe=One-Click").status == 200
    assert _unsubscribed(sent) == UNSUBSCRIBED


def test_it_refuses_other_methods(sent: Sent) -> None:
    assert call("PUT", links.unsubscribe_url(BASE, sent.tenant.pk, sent.pk)).status == 405
    assert call("POST", links.open_url(BASE, sent.tenant.pk, sent.pk)).status == 405


def test_it_unsubscribes_by_mailto_address_in_any_case(sent: Sent) -> None:
    address = links.unsubscribe_mailto(sent.tenant.pk, sent.pk)
    local = address.split("@")[0]
    assert len(local) <= 64
    assert unsubscribe_by_address(f"<{address.upper()}>") is True
    assert _unsubscribed(sent) == UNSUBSCRIBED
    assert unsubscribe_by_address(address) is False


def test_it_refuses_forged_mailto_addresses(sent: Sent, cast: Cast) -> None:
    address = links.unsubscribe_mailto(sent.tenant.pk, sent.pk)
    local, domain = address.split("@")
    flipped = local[:-3] + ("a" if local[-3] != "a" else "b") + local[-2:]
    for bad in (f"{flipped}@{domain}", f"hello@{domain}", f"unsubscribe-zzzz@{domain}"):
        with pytest.raises(tokens.BadToken):
            unsubscribe_by_address(bad)
    old = tokens.sign_mailto(sent.tenant.pk, sent.pk, day=tokens.today() - 400)
    with pytest.raises(tokens.BadToken):
        unsubscribe_by_address(f"unsubscribe-{old}@{domain}")
    assert _unsubscribed(sent) == NOT_UNSUBSCRIBED


def test_it_keeps_django_for_every_other_path() -> None:
    response = call("GET", "http://localhost/health")
    assert response.status in (200, 503)
    assert response.headers["Content-Type"].startswith("application/json")


def test_it_keeps_tokens_small_enough_for_old_mail(sent: Sent) -> None:
    # A link from a year-old message still works (365 days, the default lifetime).
    issued = tokens.today() - 365
    token = tokens.sign("c", sent.tenant.pk, sent.pk, "https://example.com/", day=issued)
    assert call("GET", f"{BASE}/t/c/{token}").status == 302
