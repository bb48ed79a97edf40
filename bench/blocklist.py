"""Blocklist checks: 1,000 IPs against 6 lists (6,000 A queries) through the sandbox DNS server,
with our pipelined checker (reputation.services.blocklists_dns.lookup, what check_ips runs)
beside a bare dnspython loop (Resolver.resolve per query) asking the same names, in the same
process against the same server. Goal: at least 0.8 x the bare loop's rate.

The server serves a few listings (and one refusal), so both paths see every kind of answer; the
checker's verdicts are compared with the loop's before any figure is printed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# The project root replaces bench/ on the path (bench/queue.py would shadow the stdlib's queue).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import dns.resolver  # noqa: E402

from penguinmails.sandbox.dns import ZoneStore, stage_blocklisting, start_sandbox_dns  # noqa: E402
from reputation.services.blocklists_dns import classify, lookup, query_name  # noqa: E402

ZONES = [
    "zen.spamhaus.org", "b.barracudacentral.org", "bl.spamcop.net",
    "dnsbl-1.uceprotect.net", "psbl.surriel.com", "bl.mailspike.net",
]  # fmt: skip
IPS = int(os.environ.get("BENCH_BLOCKLIST_IPS", "1000"))
ROUNDS = int(os.environ.get("BENCH_BLOCKLIST_ROUNDS", "3"))
# Queries in flight (DNSBL_WINDOW): the sandbox server spawns a thread per query in this very
# process, so a deep window only adds threads fighting for the GIL (measured: 4-8 is best).
WINDOW = int(os.environ.get("BENCH_BLOCKLIST_WINDOW", "8"))


def addresses() -> list[str]:
    return [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(1, IPS + 1)]


def bare_loop(resolver: dns.resolver.Resolver, names: list[str]) -> dict[str, str]:
    verdicts = {}
    for name in names:
        try:
            answer = resolver.resolve(name, "A")
            verdicts[name] = classify(answer.response)[0].value
        except dns.resolver.NXDOMAIN:
            verdicts[name] = "clean"
        except dns.exception.Timeout:
            verdicts[name] = "unknown"
    return verdicts


def main() -> None:
    ips = addresses()
    store = ZoneStore()
    for ip in ips[::200]:
        stage_blocklisting(store, ip, zone="bl.spamcop.net")
    stage_blocklisting(store, ips[1], zone="zen.spamhaus.org", answer="127.255.255.254")
    server = start_sandbox_dns("127.0.0.1", 0, store)
    target = ("127.0.0.1", server.port)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    resolver.cache = None
    resolver.timeout = resolver.lifetime = 5.0
    names = [query_name(ip, zone) for ip in ips for zone in ZONES]
    try:
        ours_best = bare_best = float("inf")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            bare = bare_loop(resolver, names)
            bare_best = min(bare_best, time.perf_counter() - start)
            start = time.perf_counter()
            answers = lookup(ips, ZONES, server=target, timeout=5.0, window=WINDOW)
            ours_best = min(ours_best, time.perf_counter() - start)
            ours = {query_name(a.subject, a.zone): a.verdict.value for a in answers}
            if ours != bare:
                raise SystemExit("the checker and the bare loop disagree")
    finally:
        server.stop()
    listed = sum(1 for v in ours.values() if v == "listed")
    refused = sum(1 for v in ours.values() if v == "refused")
    n = len(names)
    ratio = bare_best / ours_best
    print(
        f"blocklist: {IPS} IPs x {len(ZONES)} lists = {n} queries ({listed} listed, "
        f"{refused} refused), best of {ROUNDS}"
    )
    print(
        f"  checker (pipelined, TXT reasons included): {ours_best:.2f} s, {n / ours_best:,.0f} q/s"
    )
    print(
        f"  bare dnspython loop:                       {bare_best:.2f} s, {n / bare_best:,.0f} q/s"
    )
    verdict = "ok" if ratio >= 0.8 else "MISSED"
    print(f"  checker / bare loop speed: {ratio:.2f}x (goal >= 0.8x): {verdict}")


if __name__ == "__main__":
    main()
