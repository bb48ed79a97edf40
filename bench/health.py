"""Benchmark of the health endpoints and /metrics (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/health.py

Runs what production runs on its own database and redis-server: the Procfile's gunicorn (its
config, two workers), a Celery worker and beat (so beat's heartbeat is fresh and jobs flow), all
counting into one PROMETHEUS_MULTIPROC_DIR, and a sandbox SMTP server as EMAIL_HOST. Then asks
each health endpoint BENCH_REQUESTS times in a row and /metrics a tenth as often, and prints the
client-side latency (p50, p95, p99, max) and how many answers were not 200; beside them, in the
same run, a request Django answers with a plain 404 (the floor of gunicorn and Django).
Goal (seed): every health endpoint answers within 100 ms, healthy ones with 200.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is first on sys.path, and its queue.py would shadow the standard
# library's `queue` (which redis-py imports).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import logging  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

from bench._harness import (  # noqa: E402
    ROOT,
    bench_database,
    celery_processes,
    free_port,
    pct,
    private_redis,
    setup_django,
    stop,
    wait,
)

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
TOKEN = "bench-health-token"
GOAL_MS = 100.0


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, float, int]:
    """(status, client-side milliseconds, body bytes)."""
    request = urllib.request.Request(url, headers={"Host": "localhost", **(headers or {})})  # noqa: S310 - our own http://127.0.0.1 server
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body = error.read()
        status = error.code
    return status, (time.perf_counter() - started) * 1000, len(body)


def web_command(port: int) -> list[str]:
    line = next(
        row.split(":", 1)[1] for row in (ROOT / "Procfile").read_text().splitlines()
        if row.startswith("web:")
    )  # fmt: skip
    args = shlex.split(line)
    conf = args.index("-c")
    return [sys.executable, "-m", "gunicorn", "penguinmails.wsgi", *args[conf : conf + 2],
            "--bind", f"127.0.0.1:{port}", "--workers", "2"]  # fmt: skip


def measure(url: str, n: int, headers: dict[str, str] | None = None) -> dict[str, float]:
    times, bad, size = [], 0, 0
    for _ in range(n):
        status, ms, size = fetch(url, headers)
        times.append(ms)
        bad += status != 200
    return {
        "p50": pct(times, 50), "p95": pct(times, 95), "p99": pct(times, 99),
        "max": max(times), "not_200": bad, "bytes": size,
    }  # fmt: skip


def main() -> None:
    from penguinmails.sandbox.smtp import start_sandbox_smtp

    # The sandbox SMTP server logs every connection at INFO.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp, bench_database("bench_health"):
        work = Path(tmp)
        with private_redis(work):
            metrics_dir = work / "metrics"
            metrics_dir.mkdir()
            smtp = start_sandbox_smtp("127.0.0.1", 0, work / "maildir", user="u", password="p")
            os.environ.update(
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), METRICS_TOKEN=TOKEN,
                EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp.port), DEBUG="false",
                SECURE_SSL_REDIRECT="false",
            )  # fmt: skip
            setup_django()
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            web = subprocess.Popen(
                web_command(port), cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                with celery_processes(work, "2"):
                    wait(lambda: fetch(f"{base}/health/queue")[0] == 200, 60, "/health/queue 200")
                    run(base)
            finally:
                stop(web)
                smtp.stop()


def run(base: str) -> None:
    load = os.getloadavg()[0]
    rows = {
        "floor: a plain 404": measure(f"{base}/no-such-page/", REQUESTS),
        "/health": measure(f"{base}/health", REQUESTS),
        "/health/db": measure(f"{base}/health/db", REQUESTS),
        "/health/queue": measure(f"{base}/health/queue", REQUESTS),
        "/health/email": measure(f"{base}/health/email", REQUESTS),
        "/metrics": measure(
            f"{base}/metrics", max(REQUESTS // 10, 10), {"Authorization": f"Bearer {TOKEN}"}
        ),
    }
    print(f"gunicorn --workers 2 (Procfile config), worker -c 2, beat; {REQUESTS} requests each "
          f"in a row; load {load:.1f} at the start")  # fmt: skip
    print(f"{'endpoint':<22}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  not 200")
    for name, r in rows.items():
        bad = "-" if name.startswith("floor") else str(int(r["not_200"]))  # a 404 by design
        print(f"{name:<22}{r['p50']:8.1f}{r['p95']:8.1f}{r['p99']:8.1f}{r['max']:8.1f}  {bad}")
    health = [r for name, r in rows.items() if name.startswith("/health")]
    worst = max(r["max"] for r in health)
    failed = sum(int(r["not_200"]) for r in health)
    verdict = "met" if worst < GOAL_MS and not failed else "MISSED"
    print(
        f"goal: every health answer within {GOAL_MS:.0f} ms, all 200: {verdict} "
        f"(slowest {worst:.1f} ms, {failed} not 200); /metrics {rows['/metrics']['bytes']} bytes"
    )


if __name__ == "__main__":
    main()
