"""Benchmark of the tracking hot path (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/tracking.py

Serves penguinmails.wsgi (the open pixel and the click redirect: token check, LPUSH to Redis,
response) under gunicorn, and beside it, under the same gunicorn configuration, a minimal WSGI
app that returns the same 43-byte GIF and nothing else: the ceiling of the server itself. Load
comes from `wrk` (a compiled client; Python threads cannot make 3,000 requests/s on 2 cores),
installed with apt-get when missing and run as root, on the same machine: its own CPU share is
printed, as it competes with the server. Uses its own redis-server on a free loopback port and
never touches PostgreSQL (the hot path does not); checks afterwards that every answered request
left exactly one event in the buffer. Goal: 3,000 requests/s with p99 under 25 ms (2 cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is first on sys.path, and its queue.py would shadow the standard
# library's `queue` (which redis-py imports).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

from bench._harness import free_port, private_redis, setup_django, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "32")
# Two per core: a sync worker waits on Redis's reply (~0.1 ms) without using its core.
WORKERS = os.environ.get("BENCH_WORKERS", "4")
GOAL_RPS, GOAL_P99_MS = 3000, 25.0
# The same 43 bytes as campaigns.tracking.app.GIF (checked below).
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def baseline(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def,type-arg]  # noqa: ANN001
    """The minimal WSGI app: the same GIF, no token, no Redis."""
    start_response("200 OK", [("Content-Type", "image/gif"), ("Content-Length", "43")])
    return [GIF]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get (Debian package `wrk`)")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench/tracking.py needs wrk: apt-get install wrk")
    return found


def gunicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
         "--workers", WORKERS, "--log-level", "warning", "--chdir", str(ROOT)],
        env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/t/", timeout=2).close()
            return proc
        except urllib.error.HTTPError:
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn {app} did not start") from None
            time.sleep(0.1)


def wrk(binary: str, url: str) -> dict[str, float]:
    """Requests/s, p50/p99 in ms, non-2xx/3xx responses and wrk's own CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [binary, "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    total = int(re.search(r"(\d+) requests in ([\d.]+)(s|m)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    seconds = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": latency("50"),
        "p99": latency("99"),
        "total": total,
        "bad": int(bad.group(1)) if bad else 0,
        "socket_errors": 1.0 if errors else 0.0,
        "client_cpu": cpu / seconds / (os.cpu_count() or 1),
    }


def main() -> None:
    binary = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-tracking-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with private_redis(tmp) as redis_url:
            env = dict(os.environ, DEBUG="false", SECURE_SSL_REDIRECT="false",
                       DJANGO_SETTINGS_MODULE="penguinmails.settings")  # fmt: skip
            os.environ.update(env)
            import redis

            setup_django(migrate=False)
            from campaigns.tracking import app, links

            assert app.GIF == GIF, "bench GIF differs from the app's"
            client = redis.Redis.from_url(redis_url)
            load_before = os.getloadavg()[0]
            # The minimal app first, then ours: same gunicorn settings, same wrk, same URLs.
            port = free_port()
            procs.append(gunicorn("bench.tracking:baseline", port, env))
            results = {"minimal WSGI GIF": wrk(binary, f"http://127.0.0.1:{port}/t/o/x.gif")}
            stop(procs.pop())
            port = free_port()
            procs.append(gunicorn("penguinmails.wsgi", port, env))
            base = f"http://127.0.0.1:{port}"
            pixel = links.open_url(base, 1, 123456)
            click = links.click_url(base, 1, 123456, "https://example.com/pricing?utm_source=x")
            for _ in range(50):  # warm-up: imports, the Redis pool of each worker
                urllib.request.urlopen(pixel, timeout=5).close()  # noqa: S310 - our own http://127.0.0.1 URL
            client.delete("tracking:events")
            results["open pixel"] = wrk(binary, pixel)
            opens = client.llen("tracking:events")
            client.delete("tracking:events")
            results["click redirect"] = wrk(binary, click)
            clicks = client.llen("tracking:events")
            load_after = os.getloadavg()[0]
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"gunicorn --workers {WORKERS} (sync), wrk -t2 -c{CONNECTIONS} -d{DURATION}, "
          f"{os.cpu_count()} cores shared by server, Redis and client:")  # fmt: skip
    print(f"  {'':18} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'client CPU':>10}")
    for name, r in results.items():
        print(f"  {name:18} {r['rps']:8.0f} {r['p50']:7.2f} {r['p99']:7.2f} {int(r['bad']):6d} "
              f"{r['client_cpu']:10.0%}")  # fmt: skip
    base_rps = results["minimal WSGI GIF"]["rps"]
    for name in ("open pixel", "click redirect"):
        r = results[name]
        ok = r["rps"] >= GOAL_RPS and r["p99"] < GOAL_P99_MS
        verdict = "met" if ok else "NOT met"
        print(f"  {name}: {r['rps'] / base_rps:.0%} of the minimal app; goal {GOAL_RPS} req/s "
              f"and p99 < {GOAL_P99_MS:.0f} ms: {verdict}")  # fmt: skip
    # wrk counts the requests answered within its window; the server may finish a few more.
    pixels, redirects = (int(results[k]["total"]) for k in ("open pixel", "click redirect"))
    print(f"  events buffered: {opens} opens for {pixels} pixel requests, {clicks} clicks for "
          f"{redirects} redirects (never fewer)")  # fmt: skip
    print(f"  load average (1 min) {load_before:.1f} before, {load_after:.1f} after")


if __name__ == "__main__":
    main()
