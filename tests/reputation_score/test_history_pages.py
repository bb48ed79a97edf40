"""A history page per sending domain and per IP (issue 13 item 5, "kept daily as history and
charted"): the latest score with its parts, the daily scores as a chart and a table, linked from
the overview's rows; another tenant's domain or IP is a 404, and each page follows its area."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from deliverability.models import DomainRecord, RecordStatus
from infrastructure.models import IpAddress, IpStatus
from reputation.services import scores
from tests.conftest import Cast, client_for
from tests.dashboard.helpers import custom_member
from tests.reputation_score.conftest import make_domain, make_ip

pytestmark = pytest.mark.django_db


def daily(page: str) -> list[tuple[str, str]]:
    return re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\d+)</td></tr>", page)


def _scored(cast: Cast) -> tuple[int, int, list[str]]:
    """scored.test with DMARC broken two days ago, mended since; an IP scored the same days."""
    today = timezone.now().date()
    days = [today - timedelta(days=2), today - timedelta(days=1), today]
    with schema_context(cast.tenant.schema_name):
        domain = make_domain("scored.test", broken=("dmarc",))
        ip = make_ip(cast.tenant, "127.0.0.71")
        scores.score_tenant(cast.tenant, day=days[0])
        DomainRecord.objects.filter(domain=domain, purpose="dmarc").update(status=RecordStatus.OK)
        for day in days[1:]:
            scores.score_tenant(cast.tenant, day=day)
    return domain.pk, ip.pk, [f"{d:%Y-%m-%d}" for d in days]


def test_the_overview_links_each_domain_and_ip_to_its_charted_history(cast: Cast) -> None:
    domain_id, ip_id, days = _scored(cast)
    owner = client_for(cast.owner, cast.tenant)
    overview = owner.get("/reputation/").content.decode()
    assert f'href="/reputation/domains/{domain_id}/"' in overview
    assert f'href="/reputation/ips/{ip_id}/"' in overview

    page = owner.get(f"/reputation/domains/{domain_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-label="scored.test: reputation, 30 days"' in html and "<svg" in html
    rows = daily(html)
    assert [day for day, _ in rows] == days
    assert int(rows[0][1]) < int(rows[-1][1])  # the broken DMARC cost points, then mended
    assert f'data-score="{rows[-1][1]}"' in html and 'data-part="dns"' in html

    ip_page = owner.get(f"/reputation/ips/{ip_id}/")
    assert ip_page.status_code == 200
    ip_html = ip_page.content.decode()
    assert 'aria-label="127.0.0.71: reputation, 30 days"' in ip_html
    assert [day for day, _ in daily(ip_html)] == days


def test_one_day_of_history_shows_the_score_without_a_chart(cast: Cast) -> None:
    with schema_context(cast.tenant.schema_name):
        domain = make_domain("new.test")
        scores.score_tenant(cast.tenant)
    html = client_for(cast.owner, cast.tenant).get(f"/reputation/domains/{domain.pk}/")
    assert html.status_code == 200
    assert 'data-score="' in html.content.decode() and "<svg" not in html.content.decode()


def test_another_tenants_or_unknown_or_released_subjects_are_404(cast: Cast) -> None:
    domain_id, ip_id, _ = _scored(cast)
    outsider = client_for(cast.outsider, cast.other_tenant)
    for path in (f"/reputation/domains/{domain_id}/", f"/reputation/ips/{ip_id}/"):
        response = outsider.get(path)
        assert response.status_code == 404, path
        assert "scored.test" not in response.content.decode()
        assert "127.0.0.71" not in response.content.decode()
        on_acme = client_for(cast.outsider, cast.tenant).get(path)
        assert on_acme.status_code in (302, 404), path
        assert "127.0.0.71" not in on_acme.content.decode()
    owner = client_for(cast.owner, cast.tenant)
    assert owner.get("/reputation/domains/999999/").status_code == 404
    assert owner.get("/reputation/ips/999999/").status_code == 404
    make_ip(cast.tenant, "127.0.0.72", status=IpStatus.RELEASED)
    released = IpAddress.objects.get(address="127.0.0.72")
    assert owner.get(f"/reputation/ips/{released.pk}/").status_code == 404


def test_each_page_follows_its_area(cast: Cast) -> None:
    domain_id, ip_id, _ = _scored(cast)
    no_infra, _ = custom_member(cast.tenant, "noinfra3@acme.test", warmup="read", domains="read")
    client = client_for(no_infra, cast.tenant)
    assert client.get(f"/reputation/domains/{domain_id}/").status_code == 200
    assert client.get(f"/reputation/ips/{ip_id}/").status_code == 403
    no_domains, _ = custom_member(cast.tenant, "nodomains3@acme.test", infrastructure="read")
    client = client_for(no_domains, cast.tenant)
    assert client.get(f"/reputation/domains/{domain_id}/").status_code == 403
    assert client.get(f"/reputation/ips/{ip_id}/").status_code == 200
    # The viewer reads both.
    viewer = client_for(cast.viewer, cast.tenant)
    assert viewer.get(f"/reputation/domains/{domain_id}/").status_code == 200
    assert viewer.get(f"/reputation/ips/{ip_id}/").status_code == 200
