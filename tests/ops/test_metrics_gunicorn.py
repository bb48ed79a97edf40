"""/metrics under the Procfile's gunicorn (its config, two workers, PROMETHEUS_MULTIPROC_DIR):
requests answered by either worker are counted once each in every scrape, whichever worker
answers the scrape, also while workers are recycled (--max-requests) and their successors take
over their files; the web server clears its dead predecessors' files when it starts."""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from penguinmails.sandbox.smtp import free_port
from tests.ops.conftest import PYTHON, ROOT, subprocess_env, the_test_database_url

TOKEN = "gunicorn-scrape-token"


def procfile_web_args() -> list[str]:
    """The Procfile's web line, minus its shell defaults (bind and workers are set here)."""
    line = next(
        row.split(":", 1)[1] for row in (ROOT / "Procfile").read_text().splitlines()
        if row.startswith("web:")
    )  # fmt: skip
    args = shlex.split(line)
    assert args[:2] == ["gunicorn", "penguinmails.wsgi"]
    conf = args.index("-c")
    return args[conf : conf + 2]


@contextmanager
def web(metrics_dir: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "penguinmails.wsgi", *procfile_web_args(),
         "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "30",
         "--max-requests", "12"],
        env=subprocess_env(
            DATABASE_URL=the_test_database_url(), DEBUG="false", SECURE_SSL_REDIRECT="false",
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), METRICS_TOKEN=TOKEN,
            HEALTH_TIMEOUT_MS="1000",
        ),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/health/db", timeout=5).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"gunicorn did not start:\n{out}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


def health_requests(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "penguinmails_http_requests_total" and s.labels["view"] == "health":
                total += s.value
    return total


def scrape(base: str) -> str:
    request = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Host": "localhost"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()


def get(url: str) -> int:
    # A new connection each time, so both workers take some.
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status


@pytest.mark.slow
def test_it_counts_requests_of_both_gunicorn_workers_together(
    django_db_setup: None, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    host = socket.gethostname().replace("_", "-")
    # A previous run's files (a slot, a pid that no longer exists) and a worker's file of
    # another container sharing the directory.
    stale = metrics_dir / f"counter_web-{host}-slot3.db"
    stale.write_bytes(b"")
    dead = metrics_dir / f"histogram_web-{host}-4194999.db"
    dead.write_bytes(b"")
    command = metrics_dir / f"histogram_proc-{host}-4194998.db"  # a one-off manage.py command
    command.write_bytes(b"")
    other_host = metrics_dir / "counter_web-another-host-12.db"
    other_host.write_bytes(b"")
    with web(metrics_dir) as base:
        assert not stale.exists() and not dead.exists() and not command.exists()
        assert other_host.exists()
        other_host.unlink()
        before = health_requests(scrape(base))
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(get, [f"{base}/health/db"] * 40))
        assert statuses == [200] * 40
        # Whichever worker answers each scrape, the sum is the same.
        for _ in range(4):
            assert health_requests(scrape(base)) - before == 40
        # Recycled a few times (a restarted worker loads the app: slow on a busy machine, hence
        # the long client timeouts), yet one set of files per worker slot.
        slots = sorted(f.name for f in metrics_dir.glob(f"counter_web-{host}-*.db"))
        assert slots == [f"counter_web-{host}-slot0.db", f"counter_web-{host}-slot1.db"]
