"""The tracking endpoints under a real gunicorn serving penguinmails.wsgi, on a Host that
django-tenants does not know (a tenant's tracking CNAME); and the unsubscribe POST while the
app cannot reach PostgreSQL: buffered, then applied by the flusher."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from django_tenants.utils import schema_context

from campaigns.models import Lead, LeadStatus, Message
from campaigns.tracking import buffer, links
from campaigns.tracking.app import GIF
from campaigns.tracking.flush import flush
from tests.conftest import Cast
from tests.tracking.conftest import CLOSED_DB, gunicorn, make_sent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _fetch(
    url: str, *, data: bytes | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Host": "track.customer.test"})  # fmt: skip
    try:
        with _opener.open(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_it_serves_tracking_on_any_host_under_gunicorn(cast: Cast) -> None:
    sent = make_sent(cast.tenant)
    with gunicorn() as base:
        status, headers, body = _fetch(links.open_url(base, sent.tenant.pk, sent.pk))
        assert (status, headers["Content-Type"], body) == (200, "image/gif", GIF)
        status, headers, _ = _fetch(
            links.click_url(base, sent.tenant.pk, sent.pk, "https://example.com/a")
        )
        assert (status, headers["Location"]) == (302, "https://example.com/a")
        unsubscribe = links.unsubscribe_url(base, sent.tenant.pk, sent.pk)
        status, _, body = _fetch(unsubscribe)
        assert status == 200 and b"<form" in body
        assert _fetch(f"{base}/t/c/forged.token")[0] == 404
        with schema_context(sent.tenant.schema_name):
            assert Message.objects.get(pk=sent.pk).unsubscribed_at is None
        status, _, body = _fetch(unsubscribe, data=b"List-Unsubscribe=One-Click", method="POST")
        assert status == 200 and b"You are unsubscribed" in body
    with schema_context(sent.tenant.schema_name):
        assert Message.objects.get(pk=sent.pk).unsubscribed_at is not None
    assert buffer.depth()["waiting"] == 2  # the open and the click
    assert flush().written == 2


def test_it_buffers_an_unsubscribe_while_postgresql_is_unreachable(cast: Cast) -> None:
    sent = make_sent(cast.tenant)
    with gunicorn(DATABASE_URL=CLOSED_DB) as base:
        unsubscribe = links.unsubscribe_url(base, sent.tenant.pk, sent.pk)
        status, _, body = _fetch(unsubscribe, data=b"List-Unsubscribe=One-Click", method="POST")
        assert status == 200 and b"You are unsubscribed" in body
    assert buffer.depth()["waiting"] == 1
    assert flush().written == 0  # unsubscribes are no open/click rows, but they are applied:
    with schema_context(sent.tenant.schema_name):
        assert Message.objects.get(pk=sent.pk).unsubscribed_at is not None
        assert Lead.objects.get(pk=sent.lead_pk).status == LeadStatus.UNSUBSCRIBED
