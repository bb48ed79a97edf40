"""Servers' CPU, memory and disk (issue 15 item 4): read from node_exporter over HTTP (a local
http.server serving a node_exporter page, and the real node_exporter when Debian's package is
installed), stored, checked against the plan's thresholds, alerted and resolved, and shown on the
page, in the API, the admin and `infra resources`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from billing.models import Plan
from infrastructure.models import VpsInstance, VpsResourceSample, VpsStatus
from infrastructure.services import resources
from penguinmails.alerts.models import Alert, AlertState
from penguinmails.models import Job
from tenants.models import User
from tests.api.conftest import assert_error
from tests.conftest import PASSWORD, Cast, client_for
from tests.infra_lifecycle.conftest import run_jobs, set_plan

GB = 1024**3


def exporter_page(
    *,
    busy: float = 100.0,
    idle: float = 900.0,
    mem_total: float = 4 * GB,
    mem_available: float = 3 * GB,
    root_size: float = 80 * GB,
    root_avail: float = 60 * GB,
) -> str:
    """A node_exporter 1.5 page (format and names as it serves them), two CPUs, with the
    filesystems a Docker host shows: only ext4 ones count, tmpfs and overlay must not."""
    half_busy, half_idle = busy / 2, idle / 2
    cpu = "\n".join(
        f'node_cpu_seconds_total{{cpu="{n}",mode="{mode}"}} {value}'
        for n in ("0", "1")
        for mode, value in (
            ("idle", half_idle - 5),
            ("iowait", 5),
            ("irq", 0),
            ("nice", 0),
            ("softirq", 1),
            ("steal", 0),
            ("system", half_busy / 2 - 1),
            ("user", half_busy / 2),
        )
    )
    fs = [
        ("/dev/vda1", "ext4", "/", root_size, root_avail),
        ("/dev/vda15", "vfat", "/boot/efi", 104882176, 98_000_000),
        ("tmpfs", "tmpfs", "/run", 400_000_000, 1_000),  # nearly full: must be ignored
        ("overlay", "overlay", "/var/lib/docker/overlay2/abc/merged", root_size, 1_000),
    ]
    size_lines = "\n".join(
        f'node_filesystem_size_bytes{{device="{d}",fstype="{t}",mountpoint="{m}"}} {s:.10e}'
        for d, t, m, s, _ in fs
    )
    avail_lines = "\n".join(
        f'node_filesystem_avail_bytes{{device="{d}",fstype="{t}",mountpoint="{m}"}} {a:.10e}'
        for d, t, m, _, a in fs
    )
    return f"""# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 8
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
{cpu}
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
{avail_lines}
# HELP node_filesystem_size_bytes Filesystem size in bytes.
# TYPE node_filesystem_size_bytes gauge
{size_lines}
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes {mem_available:.10e}
# HELP node_memory_MemFree_bytes Memory information field MemFree_bytes.
# TYPE node_memory_MemFree_bytes gauge
node_memory_MemFree_bytes {mem_available / 2:.10e}
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes {mem_total:.10e}
"""


class Exporter:
    """A real HTTP server on loopback serving whatever page the test sets at /metrics."""

    def __init__(self) -> None:
        self.page = exporter_page()
        self.status = 200
        self.hits = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                exporter.hits += 1
                body = exporter.page.encode() if self.path == "/metrics" else b"not found"
                self.send_response(exporter.status if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def exporter(settings: Any, tmp_path: Path) -> Iterator[Exporter]:
    server = Exporter()
    settings.NODE_EXPORTER_URL_TEMPLATE = f"http://{{ip}}:{server.port}/metrics"
    settings.NODE_EXPORTER_TIMEOUT_SECONDS = 2
    settings.VPS_PROVIDER = "local"
    settings.LOCAL_VPS_STATE_FILE = tmp_path / "vps.json"
    yield server
    server.stop()


def active_vps(
    tenant: Any, name: str, *, ip: str = "127.0.0.1", size: str = "small"
) -> VpsInstance:
    connection.set_schema_to_public()  # type: ignore[attr-defined]
    return VpsInstance.objects.create(
        tenant=tenant,
        provider="local",
        provider_id=f"local-{name}",
        name=name,
        hostname=f"{name}.mail.test",
        size=size,
        main_ip=ip,
        status=VpsStatus.ACTIVE,
    )


def open_alert(vps: VpsInstance) -> Alert | None:
    return Alert.objects.filter(
        rule=resources.ALERT_RULE,
        subject=resources.alert_subject(vps),
        state__in=[AlertState.FIRING, AlertState.ACKNOWLEDGED],
    ).first()


def thresholds(slug: str, cpu: int, memory: int, disk: int) -> None:
    Plan.objects.filter(slug=slug).update(
        cpu_alert_percent=cpu, memory_alert_percent=memory, disk_alert_percent=disk
    )


pytestmark = pytest.mark.django_db


# --- reading ---------------------------------------------------------------------------------


def test_a_reading_stores_memory_and_the_fullest_real_disk_then_cpu_from_two_readings(
    cast: Cast, exporter: Exporter
) -> None:
    set_plan(cast.tenant, "growth")
    vps = active_vps(cast.tenant, "acme-r1")
    now = timezone.now()
    first = resources.collect(vps.pk, now=now)
    assert first is not None and first.error == ""
    assert first.source == "node_exporter"
    assert first.memory_percent == 25.0  # 1 GB used of 4
    assert first.memory_total_bytes == 4 * GB
    # 20 of 80 GB used on / ; the nearly full tmpfs and overlay are not disks.
    assert (first.disk_percent, first.disk_mountpoint) == (25.0, "/")
    assert first.cpu_count == 2
    assert first.cpu_percent is None  # one reading of a counter says nothing yet
    # 5 minutes later: 150 more busy seconds and 150 more idle ones -> 50 %.
    exporter.page = exporter_page(busy=250.0, idle=1050.0)
    second = resources.collect(vps.pk, now=now + timedelta(minutes=5))
    assert second is not None and second.cpu_percent == 50.0
    # A reboot resets the counters: no percentage rather than a negative one.
    exporter.page = exporter_page(busy=10.0, idle=20.0)
    third = resources.collect(vps.pk, now=now + timedelta(minutes=10))
    assert third is not None and third.cpu_percent is None and third.memory_percent == 25.0


def test_a_failed_reading_is_kept_with_its_reason(cast: Cast, exporter: Exporter) -> None:
    vps = active_vps(cast.tenant, "acme-r2")
    exporter.status = 503
    sample = resources.collect(vps.pk)
    assert sample is not None and "503" in sample.error and sample.memory_percent is None
    exporter.status, exporter.page = 200, "this is not a metrics page {"
    sample = resources.collect(vps.pk)
    assert sample is not None and sample.error
    nobody = active_vps(cast.tenant, "acme-r3", ip="127.0.0.2")
    exporter_port_closed = resources.collect(nobody.pk)  # nothing listens on 127.0.0.2:port
    assert exporter_port_closed is not None and "unreachable" in exporter_port_closed.error


def test_an_unreadable_server_is_a_warning_once_not_at_every_interval(
    cast: Cast, exporter: Exporter, caplog: pytest.LogCaptureFixture
) -> None:
    vps = active_vps(cast.tenant, "acme-r4")
    now = timezone.now()
    assert resources.collect(vps.pk, now=now) is not None  # a good reading first
    exporter.status = 503
    caplog.set_level(logging.INFO)
    for minutes in (5, 10, 15):
        sample = resources.collect(vps.pk, now=now + timedelta(minutes=minutes))
        assert sample is not None and "503" in sample.error  # every failure stored
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "resources of acme-r4: node_exporter answered HTTP 503."
    ]
    exporter.status = 200
    assert resources.collect(vps.pk, now=now + timedelta(minutes=20)).error == ""  # type: ignore[union-attr]
    caplog.clear()
    exporter.status = 503
    resources.collect(vps.pk, now=now + timedelta(minutes=25))
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == [
        logging.WARNING
    ]  # broken again after a good reading: said again


def test_the_exporter_url_follows_the_template(cast: Cast, settings: Any) -> None:
    settings.NODE_EXPORTER_URL_TEMPLATE = "http://{ip}:9100/metrics"
    v4 = active_vps(cast.tenant, "acme-u4", ip="203.0.113.7")
    v6 = active_vps(cast.tenant, "acme-u6", ip="2001:db8::7")
    assert resources.exporter_url(v4) == "http://203.0.113.7:9100/metrics"
    assert resources.exporter_url(v6) == "http://[2001:db8::7]:9100/metrics"
    settings.NODE_EXPORTER_URL_TEMPLATE = "https://{hostname}:9443/metrics"
    assert resources.exporter_url(v4) == "https://acme-u4.mail.test:9443/metrics"


def test_servers_not_active_are_not_read(cast: Cast, exporter: Exporter) -> None:
    vps = active_vps(cast.tenant, "acme-r4")
    VpsInstance.objects.filter(pk=vps.pk).update(status=VpsStatus.SUSPENDED)
    assert resources.collect(vps.pk) is None
    assert exporter.hits == 0 and not VpsResourceSample.objects.filter(vps=vps).exists()


def test_history_is_pruned_after_the_retention(
    cast: Cast, exporter: Exporter, settings: Any
) -> None:
    settings.VPS_RESOURCE_RETENTION_HOURS = 1
    vps = active_vps(cast.tenant, "acme-r5")
    start = timezone.now() - timedelta(hours=3)
    for minutes in (0, 30, 170, 175):
        resources.collect(vps.pk, now=start + timedelta(minutes=minutes))
    kept = VpsResourceSample.objects.filter(vps=vps).order_by("taken_at")
    assert [s.taken_at for s in kept] == [start + timedelta(minutes=m) for m in (170, 175)]


# --- thresholds and the alert ----------------------------------------------------------------


def test_over_the_plans_threshold_raises_the_tenants_alert_and_it_resolves_when_back_under(
    cast: Cast, exporter: Exporter
) -> None:
    set_plan(cast.tenant, "growth")
    thresholds("growth", 90, 80, 85)
    vps = active_vps(cast.tenant, "acme-r6")
    resources.collect(vps.pk)
    assert open_alert(vps) is None
    # Memory 87.5 % (over 80), disk 90 % (over 85).
    exporter.page = exporter_page(mem_available=0.5 * GB, root_avail=8 * GB)
    sample = resources.collect(vps.pk)
    assert sample is not None and sample.over == ["memory", "disk"]
    alert = open_alert(vps)
    assert alert is not None
    assert alert.tenant_schema == cast.tenant.schema_name
    assert alert.severity == "warning"
    assert "memory 88% (limit 80%)" in alert.summary and "disk 90% (limit 85%)" in alert.summary
    assert alert.detail["thresholds"] == {"cpu": 90, "memory": 80, "disk": 85}
    # Still over, and worse: the same alert, refreshed, now critical (disk at 97.5 %).
    exporter.page = exporter_page(mem_available=0.5 * GB, root_avail=2 * GB)
    resources.collect(vps.pk)
    again = open_alert(vps)
    assert again is not None and again.pk == alert.pk and again.severity == "critical"
    # A failed reading leaves it open: not knowing is not being fine.
    exporter.status = 500
    resources.collect(vps.pk)
    assert open_alert(vps) is not None
    # Back under: resolved.
    exporter.status, exporter.page = 200, exporter_page()
    resources.collect(vps.pk)
    assert open_alert(vps) is None
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_thresholds_are_the_plans(cast: Cast, exporter: Exporter) -> None:
    """The same figures alert on a plan with tight thresholds and not on one with loose ones."""
    exporter.page = exporter_page(root_avail=12 * GB)  # disk 85 %
    thresholds("growth", 90, 90, 80)
    thresholds("scale", 90, 90, 90)
    set_plan(cast.tenant, "growth")
    tight = active_vps(cast.tenant, "acme-r7")
    resources.collect(tight.pk)
    assert open_alert(tight) is not None
    set_plan(cast.other_tenant, "scale")
    loose = active_vps(cast.other_tenant, "globex-r1")
    resources.collect(loose.pk)
    assert open_alert(loose) is None


# --- the schedule: a job per server, spread ------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the queue runner commits and closes
def test_beat_enqueues_one_spread_read_per_active_server_and_the_jobs_read_them(
    cast: Cast, exporter: Exporter, settings: Any
) -> None:
    settings.VPS_RESOURCES_INTERVAL_SECONDS = 300
    servers = [active_vps(cast.tenant, f"acme-s{i}") for i in range(4)]
    gone = active_vps(cast.tenant, "acme-gone")
    VpsInstance.objects.filter(pk=gone.pk).update(status=VpsStatus.TERMINATED)
    now = timezone.now()
    assert resources.schedule_collection(now=now) == 4
    assert resources.schedule_collection(now=now) == 4  # the waiting jobs are kept, not doubled
    jobs = Job.objects.filter(task=resources.COLLECT_TASK)
    assert sorted(j.payload["vps_id"] for j in jobs) == sorted(v.pk for v in servers)
    offsets = {(j.run_at - now).total_seconds() for j in jobs}
    assert all(0 <= o < 300 for o in offsets) and len(offsets) == 4  # spread, not at once
    run_jobs()
    for vps in servers:
        assert VpsResourceSample.objects.filter(vps=vps, error="").count() == 1
    assert not VpsResourceSample.objects.filter(vps=gone).exists()


def test_the_alert_of_a_server_no_longer_active_resolves(cast: Cast, exporter: Exporter) -> None:
    thresholds("growth", 90, 80, 85)
    set_plan(cast.tenant, "growth")
    kept, stopped = active_vps(cast.tenant, "acme-k1"), active_vps(cast.tenant, "acme-k2")
    exporter.page = exporter_page(mem_available=0.2 * GB)
    resources.collect(kept.pk)
    resources.collect(stopped.pk)
    assert open_alert(kept) is not None and open_alert(stopped) is not None
    VpsInstance.objects.filter(pk=stopped.pk).update(status=VpsStatus.SUSPENDED)
    resources.schedule_collection()
    assert open_alert(stopped) is None
    assert open_alert(kept) is not None  # still active, still over: left to its next reading


def test_the_due_job_is_scheduled_by_beat() -> None:
    from penguinmails.schedule import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE["vps-resources-due"]
    assert entry["args"] == (resources.DUE_TASK,) and entry["schedule"] == 300.0


# --- where the figures show ------------------------------------------------------------------


def test_the_api_and_the_page_show_the_figures_to_the_tenant_only(
    cast: Cast, exporter: Exporter
) -> None:
    set_plan(cast.tenant, "growth")
    thresholds("growth", 90, 80, 85)
    vps = active_vps(cast.tenant, "acme-r8")
    exporter.page = exporter_page(mem_available=0.5 * GB)
    resources.collect(vps.pk)
    for user in (cast.owner, cast.viewer):
        api = client_for(user, cast.tenant, api=True)
        body = api.get(f"/api/v1/infrastructure/{vps.pk}").json()
        latest = body["resources"]["latest"]
        assert latest["memory_percent"] == 87.5 and latest["over"] == ["memory"]
        assert body["resources"]["thresholds"] == {"cpu": 90, "memory": 80, "disk": 85}
        assert len(body["resources"]["history"]) == 1
        listed = api.get("/api/v1/infrastructure").json()["servers"]
        assert [s["resources"]["latest"]["disk_percent"] for s in listed] == [25.0]
        page = client_for(user, cast.tenant).get("/infrastructure/").content.decode()
        assert 'id="server-resources"' in page and "87.5%" in page and "over" in page
        # The tenant-level alert shows as the dashboard's banner.
        assert 'data-alert="infra.vps_resources"' in page and "acme-r8.mail.test" in page
    outsider_api = client_for(cast.outsider, cast.other_tenant, api=True)
    assert_error(outsider_api.get(f"/api/v1/infrastructure/{vps.pk}"), 404)
    assert outsider_api.get("/api/v1/infrastructure").json()["servers"] == []
    page = client_for(cast.outsider, cast.other_tenant).get("/infrastructure/").content.decode()
    assert "acme-r8" not in page and "87.5%" not in page
    assert 'data-alert="infra.vps_resources"' not in page
    # The outsider cannot reach acme's host at all.
    assert client_for(cast.outsider, cast.tenant).get("/infrastructure/").status_code in (
        302,
        403,
        404,
    )


def test_staff_see_the_figures_in_the_admin(cast: Cast, exporter: Exporter) -> None:
    vps = active_vps(cast.tenant, "acme-r9")
    resources.collect(vps.pk)
    staff = User.objects.create_superuser("staff-res@penguinmails.example.com", PASSWORD)
    admin = client_for(staff, None)
    page = admin.get(f"/admin/infrastructure/vpsinstance/{vps.pk}/change/").content.decode()
    assert "Plan thresholds" in page and "25.0%" in page
    listing = admin.get("/admin/infrastructure/vpsresourcesample/")
    assert listing.status_code == 200 and "acme-r9" in listing.content.decode()


def test_the_command_prints_the_figures(cast: Cast, exporter: Exporter) -> None:
    vps = active_vps(cast.tenant, "acme-r10")
    out = StringIO()
    call_command("infra", "resources", "acme", "--collect", "--json", stdout=out)
    [row] = [r for r in json.loads(out.getvalue())["servers"] if r["name"] == vps.name]
    assert row["resources"]["latest"]["memory_percent"] == 25.0
    text = StringIO()
    call_command("infra", "resources", "acme", stdout=text)
    assert f"acme/{vps.name}" in text.getvalue() and "memory 25.0%/" in text.getvalue()
    with pytest.raises(CommandError, match="No tenant with slug"):
        call_command("infra", "resources", "nosuch", stdout=StringIO())


# --- the real node_exporter ------------------------------------------------------------------

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def real_exporter(settings: Any, tmp_path: Path) -> Iterator[int]:
    if NODE_EXPORTER is None:
        pytest.skip("node_exporter is not installed (apt-get install prometheus-node-exporter)")
    port = _free_port()
    command = [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"]
    if os.geteuid() == 0:  # it needs no privilege: run it as nobody
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        settings.NODE_EXPORTER_URL_TEMPLATE = f"http://{{ip}}:{port}/metrics"
        settings.VPS_PROVIDER = "local"
        settings.LOCAL_VPS_STATE_FILE = tmp_path / "vps.json"
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_real_node_exporter_is_read(cast: Cast, real_exporter: int) -> None:
    vps = active_vps(cast.tenant, "acme-real")
    first = resources.collect(vps.pk)
    assert first is not None and first.error == "", first and first.error
    assert first.memory_total_bytes and first.memory_total_bytes > 0
    assert first.memory_percent is not None and 0 < first.memory_percent < 100
    assert first.disk_percent is not None and first.disk_mountpoint
    assert first.cpu_count and first.cpu_total_seconds
    time.sleep(0.3)  # let the CPU counters move
    second = resources.collect(vps.pk)
    assert second is not None and second.cpu_total_seconds is not None
    assert second.cpu_total_seconds >= first.cpu_total_seconds
