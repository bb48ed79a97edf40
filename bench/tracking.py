"""Benchmark of the tracking hot path (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/tracking.py

Serves penguinmails.wsgi (the open pixel and the click redirect: token check, LPUSH to Redis,
response) under gunicorn, and beside it, under the same gunicorn configuration, a minimal WSGI
app that returns the same 43-byte GIF and nothing else: the ceiling of the server itself. Load
comes from `wrk` (a compiled client; Python threads cannot make 3,000 requests/s on 2 cores),
installed with apt-get when missing and run as root, on the same machine: its own CPU share is
printed, as it competes with the server. Uses its own redis-server on a free loopback port and
never touches PostgreSQL (the hot path does not); checks afterwards that every answered request
left exactly one event in the buffer. Goal (issue 16): at least 0.75 x the minimal app's
requests/s, p99 under 10 ms.

Both servers run side by side and are measured in alternating rounds (minimal, pixel, click;
BENCH_ROUNDS of BENCH_DURATION each), so a change in the machine's load moves all three: the
ratio is taken within each round and its median reported. Each wrk run also reads the CPU time
the server's processes (gunicorn's and, for ours, redis-server's) spent, as microseconds per
request: on a busy shared machine that is the steadier figure, and on a CPU-bound machine
throughput goes as its inverse.
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
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

from bench._harness import free_port, private_redis, setup_django, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DURATION = os.environ.get("BENCH_DURATION", "5s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "32")
# Two per core: a sync worker waits on Redis's reply (~0.1 ms) without using its core.
WORKERS = os.environ.get("BENCH_WORKERS", "4")
GOAL_RATIO, GOAL_P99_MS = 0.75, 10.0
_TICK = os.sysconf("SC_CLK_TCK")
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


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes and their children (gunicorn's workers), alive or
    reaped, from /proc."""
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat (11-14 after the name).
        total += sum(int(x) for x in fields[11:15]) / _TICK
        todo.extend(int(c) for c in children)
    return total


def settled(pid: int) -> None:
    """Until every worker has started and loaded the app (the first answer comes from the first
    worker up; the others' imports, ~1.5 s of CPU each, would be counted against the first
    round): the tree's CPU time still for half a second."""
    deadline = time.monotonic() + 60
    last = -1.0
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        now = cpu_seconds([pid])
        if len(children) >= int(WORKERS) and now - last < 0.02:
            return
        last = now
        time.sleep(0.5)
    print(f"  gunicorn {pid}: workers still busy after 60 s, measuring anyway", flush=True)


def redis_pid(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).info("server")["process_id"])


def gunicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
         "--workers", WORKERS, "--log-level", "warning", "--chdir", str(ROOT)],
        env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120  # two servers importing Django on a busy machine
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


def wrk(binary: str, url: str, server: list[int]) -> dict[str, float]:
    """Requests/s, p50/p99 in ms, non-2xx/3xx responses, wrk's own CPU share and the `server`
    processes' CPU microseconds per request (and of it the second process's: redis-server)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_seconds(server)
    redis_before = cpu_seconds(server[1:])
    out = subprocess.run(
        [binary, "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = cpu_seconds(server) - server_before
    redis_cpu = cpu_seconds(server[1:]) - redis_before

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
        "server_us": server_cpu / max(total, 1) * 1e6,
        "redis_us": redis_cpu / max(total, 1) * 1e6,
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    binary = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-tracking-"))
    procs: list[subprocess.Popen[bytes]] = []
    names = ("minimal WSGI GIF", "open pixel", "click redirect")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
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
            # Both servers at once, same gunicorn settings, same wrk; measured in turns.
            base_port, port = free_port(), free_port()
            procs.append(gunicorn("bench.tracking:baseline", base_port, env))
            procs.append(gunicorn("penguinmails.wsgi", port, env))
            ours = [procs[1].pid, redis_pid(redis_url)]
            base = f"http://127.0.0.1:{port}"
            urls = {
                names[0]: f"http://127.0.0.1:{base_port}/t/o/x.gif",
                names[1]: links.open_url(base, 1, 123456),
                names[2]: links.click_url(base, 1, 123456, "https://example.com/pricing?x=1"),
            }
            for proc in procs:
                settled(proc.pid)
            for _ in range(50):  # warm-up: the Redis connection of each worker
                urllib.request.urlopen(urls[names[1]], timeout=5).close()  # noqa: S310 - our own http://127.0.0.1 URL
            client.delete("tracking:events")
            buffered = {names[1]: 0, names[2]: 0}
            for _ in range(ROUNDS):
                runs[names[0]].append(wrk(binary, urls[names[0]], [procs[0].pid]))
                for name in names[1:]:
                    runs[name].append(wrk(binary, urls[name], ours))
                    time.sleep(0.2)  # the last answers' pushes
                    buffered[name] += client.llen("tracking:events")
                    client.delete("tracking:events")
            load_after = os.getloadavg()[0]
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    report(runs, buffered, load_before, load_after)


def report(
    runs: dict[str, list[dict[str, float]]],
    buffered: dict[str, int],
    load_before: float,
    load_after: float,
) -> None:
    names = list(runs)
    print(f"gunicorn --workers {WORKERS} (sync), wrk -t2 -c{CONNECTIONS} -d{DURATION} x "
          f"{ROUNDS} rounds, {os.cpu_count()} cores shared by server, Redis and client "
          "(medians):")  # fmt: skip
    print(f"  {'':18} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'client CPU':>10} "
          f"{'server CPU µs/req':>18} {'of it Redis':>11}")  # fmt: skip
    for name, rs in runs.items():
        print(f"  {name:18} {median([r['rps'] for r in rs]):8.0f} "
              f"{median([r['p50'] for r in rs]):7.2f} {median([r['p99'] for r in rs]):7.2f} "
              f"{sum(int(r['bad']) for r in rs):6d} {median([r['client_cpu'] for r in rs]):10.0%} "
              f"{median([r['server_us'] for r in rs]):18.0f} "
              f"{median([r['redis_us'] for r in rs]):11.0f}")  # fmt: skip
    base = runs[names[0]]
    for name in names[1:]:
        rs = runs[name]
        ratios = [r["rps"] / b["rps"] for r, b in zip(rs, base, strict=True)]
        cpu = median([b["server_us"] for b in base]) / median([r["server_us"] for r in rs])
        p99 = median([r["p99"] for r in rs])
        ok = median(ratios) >= GOAL_RATIO and p99 < GOAL_P99_MS
        print(f"  {name}: {median(ratios):.2f} x the minimal app (rounds: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}); by server CPU per request {cpu:.2f} x; "
              f"p99 {p99:.1f} ms; goal {GOAL_RATIO} x and p99 < {GOAL_P99_MS:.0f} ms: "
              f"{'met' if ok else 'NOT met'}")  # fmt: skip
    # wrk counts the requests answered within its window; the server may finish a few more.
    answered = {name: sum(int(r["total"]) for r in runs[name]) for name in names[1:]}
    print(f"  events buffered: {buffered[names[1]]} opens for {answered[names[1]]} pixel "
          f"requests, {buffered[names[2]]} clicks for {answered[names[2]]} redirects "
          f"(never fewer)")  # fmt: skip
    print(f"  load average (1 min) {load_before:.1f} before, {load_after:.1f} after")


if __name__ == "__main__":
    main()
