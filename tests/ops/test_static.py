"""Static files as deployed (DEBUG off, whitenoise): a skipped `collectstatic` must not turn
every page into a 500; the pages render and their static files are served unhashed."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ops.test_health import running_app


def get(url: str, host: str = "localhost") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# django_db: so that the test database is set up (with the cast) for the app process.
@pytest.mark.slow
@pytest.mark.django_db
def test_it_answers_404_not_500_without_collectstatic(tmp_path: Path) -> None:
    empty_static_root = tmp_path / "staticfiles"  # no manifest: collectstatic never ran
    with running_app(STATIC_ROOT=str(empty_static_root)) as base:
        status, body = get(f"{base}/no-such-page/")
        assert status == 404, body[:2000]
        assert "Not found" in body
        status, body = get(f"{base}/no-such-page/", host="acme.localhost")
        assert status == 404, body[:2000]
        stylesheet = re.search(r'href="(/static/css/app[^"]*\.css)"', body)
        assert stylesheet, body[:2000]
        assert stylesheet.group(1) == "/static/css/app.css"  # unhashed, there is no manifest
        status, css = get(f"{base}{stylesheet.group(1)}")
        assert status == 200 and css.strip()
