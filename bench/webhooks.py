"""Benchmark of outgoing webhooks (a script, not a test).

    python -m penguinmails.devenv exec -- .venv/bin/python bench/webhooks.py

Uses its own database (pm_bench_webhooks on DATABASE_URL's server, dropped afterwards) and a
local HTTP server on loopback (http.server in a thread of this process). Prints:

- what `emit()` costs the hot path when no endpoint subscribes: calls per second and queries
  per call (the per-process subscription cache), against a bare function call;
- what one send batch pays when an endpoint subscribes: `emit_many` of BENCH_BATCH (500)
  payloads (one Delivery row and one job each), milliseconds;
- deliveries per second through the queue runner (claim, netguard, sign, POST, log), one process,
  BENCH_DELIVERIES (500) of them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/queue.py would shadow the standard library's `queue`: drop this folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
from bench._harness import bench_database, setup_django  # noqa: E402

BENCH_DB = "pm_bench_webhooks"
CALLS = int(os.environ.get("BENCH_CALLS", "100000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
DELIVERIES = int(os.environ.get("BENCH_DELIVERIES", "500"))


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "penguinmails.settings")
    os.environ["NETGUARD_ALLOW_LOOPBACK"] = "true"  # the receiver is on loopback
    with bench_database(BENCH_DB):
        setup_django()
        run()
    return 0


def run() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from penguinmails.models import Job
    from penguinmails.queue import runner
    from tenants.models import Membership, User
    from tenants.services.access import principal_for_membership
    from tenants.services.tenancy import create_tenant, ensure_template_tenant
    from webhooks.services import delivery, endpoints

    ensure_template_tenant()
    owner = User.objects.create_user("bench-owner@example.com", "bench-password-123")
    tenant = create_tenant(name="Bench", slug="bench", owner=owner)
    principal = principal_for_membership(Membership.objects.get(tenant=tenant, user=owner))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    with schema_context(tenant.schema_name):
        endpoints.create_endpoint(principal, url=url, events=["message.opened"])
        payload = {"message_id": 1, "to": "lead@example.com"}
        delivery.emit("message.sent", payload)  # fills the cache
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            for _ in range(CALLS):
                delivery.emit("message.sent", payload)
            unsubscribed = time.perf_counter() - started

        def bare(event: str, data: dict[str, Any]) -> list[Any]:
            return []

        started = time.perf_counter()
        for _ in range(CALLS):
            bare("message.sent", payload)
        baseline = time.perf_counter() - started

        batch = [{"message_id": n, "to": f"lead{n}@example.com"} for n in range(BATCH)]
        started = time.perf_counter()
        delivery.emit_many("message.opened", batch)
        batch_ms = (time.perf_counter() - started) * 1000
        more = DELIVERIES - BATCH
        if more > 0:
            delivery.emit_many("message.opened", batch[:1] * more)

    connection.set_schema_to_public()
    ids = list(Job.objects.filter(task=delivery.DELIVER_TASK).values_list("pk", flat=True))
    started = time.perf_counter()
    for pk in ids:
        runner.run(pk, worker_id="bench")
    delivered = time.perf_counter() - started
    server.shutdown()

    print(f"emit(), nobody subscribed: {CALLS / unsubscribed:,.0f} calls/s, "
          f"{len(queries) / CALLS:.4f} queries per call "
          f"(bare function call: {CALLS / baseline:,.0f} calls/s)")  # fmt: skip
    print(f"emit_many() of {BATCH} payloads, one endpoint subscribed: {batch_ms:.1f} ms "
          f"({batch_ms / BATCH * 1000:.0f} µs per message)")  # fmt: skip
    print(f"delivery through the queue runner to a local server: {len(ids) / delivered:,.0f} "
          f"deliveries/s ({len(ids)} in {delivered:.1f} s, one process)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
