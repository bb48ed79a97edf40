"""Reading a server's CPU, memory and disk from Prometheus' node_exporter (text format on :9100).

Cloud-init installs node_exporter on every server (infrastructure/cloudinit.py) and the firewall
opens its port to the staff networks only (infrastructure/firewall.py), which must include the
control plane's egress addresses. The page is parsed with prometheus_client's own parser:

- memory: 1 - MemAvailable / MemTotal (node_memory_*_bytes);
- disk: the fullest real filesystem (ext4, xfs, btrfs, zfs), 1 - avail / size: what is left to
  a non-root process, as Mailu's containers see it; its mountpoint is reported with it;
- CPU: node_cpu_seconds_total is a counter since boot, so one page gives only the counters
  (busy = all modes but idle and iowait); `cpu_percent(previous, current)` turns two readings
  into a percentage, and the caller keeps the previous one (the last stored sample).

This module imports no model: services.resources stores what it returns.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from infrastructure.providers.base import ResourceFigures
from penguinmails.http import HttpClient, RetryPolicy, TransportFailure

# Filesystems that hold data; tmpfs, overlay (Docker's layers), squashfs (snaps) and the like
# mirror or fake space and would report nonsense.
REAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs"})
_IDLE_MODES = frozenset({"idle", "iowait"})
MAX_PAGE_BYTES = 4 * 1024 * 1024  # a full node_exporter page is ~100 KB


class ExporterError(Exception):
    """The page could not be read or holds none of the figures; the message says which."""


def fetch(url: str, *, timeout: float) -> str:
    """The exporter's page. One try: the next scheduled run is the retry."""
    # Failures are stored with the sample and logged once when new (services.resources).
    client = HttpClient(
        "node_exporter",
        timeout=timeout,
        retry=RetryPolicy(attempts=1),
        failure_level=logging.INFO,
    )
    try:
        response = client.request("GET", url, headers={"Accept": "text/plain"})
    except TransportFailure as exc:
        what = "timed out" if exc.timeout else "unreachable"
        raise ExporterError(f"node_exporter {what}: {exc.detail}") from None
    finally:
        client.close()
    if response.status_code != 200:
        raise ExporterError(f"node_exporter answered HTTP {response.status_code}.")
    if len(response.content) > MAX_PAGE_BYTES:
        raise ExporterError("node_exporter's page is larger than 4 MiB: not a node_exporter.")
    return response.text


def parse(text: str) -> ResourceFigures:
    """Memory, disk and the CPU counters from one page (cpu_percent left None)."""
    cpu_busy = cpu_total = 0.0
    cpus: set[str] = set()
    memory: dict[str, float] = {}
    sizes: dict[str, float] = {}
    avails: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name, labels, value = sample.name, sample.labels, float(sample.value)
                if name == "node_cpu_seconds_total":
                    cpus.add(labels.get("cpu", ""))
                    cpu_total += value
                    if labels.get("mode") not in _IDLE_MODES:
                        cpu_busy += value
                elif name.startswith("node_memory_") and name.endswith("_bytes"):
                    memory[name.removeprefix("node_memory_").removesuffix("_bytes")] = value
                elif name in ("node_filesystem_size_bytes", "node_filesystem_avail_bytes"):
                    if labels.get("fstype") in REAL_FILESYSTEMS:
                        target = sizes if name.endswith("size_bytes") else avails
                        target[labels.get("mountpoint", "")] = value
    except ValueError as exc:
        raise ExporterError(f"Not a Prometheus text page: {exc}") from None
    memory_total, memory_percent = _memory(memory)
    mount, disk_total, disk_percent = _fullest(sizes, avails)
    if memory_percent is None and disk_percent is None and not cpus:
        raise ExporterError("The page has no node_exporter CPU, memory or filesystem figures.")
    return ResourceFigures(
        cpu_percent=None,
        memory_percent=memory_percent,
        disk_percent=disk_percent,
        memory_total_bytes=memory_total,
        disk_total_bytes=disk_total,
        disk_mountpoint=mount,
        cpu_count=len(cpus) or None,
        cpu_busy_seconds=cpu_busy if cpus else None,
        cpu_total_seconds=cpu_total if cpus else None,
    )


def _memory(memory: dict[str, float]) -> tuple[int | None, float | None]:
    total = memory.get("MemTotal")
    if not total:
        return None, None
    available = memory.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = sum(memory.get(k, 0.0) for k in ("MemFree", "Buffers", "Cached"))
    return int(total), _percent(total - available, total)


def _fullest(
    sizes: dict[str, float], avails: dict[str, float]
) -> tuple[str, int | None, float | None]:
    best: tuple[str, int | None, float | None] = ("", None, None)
    for mount, size in sorted(sizes.items()):
        if size <= 0 or mount not in avails:
            continue
        percent = _percent(size - avails[mount], size)
        if best[2] is None or percent > best[2]:
            best = (mount, int(size), percent)
    return best


def cpu_percent(previous: ResourceFigures | None, current: ResourceFigures) -> float | None:
    """Busy share of CPU time between two readings; None without a usable previous one (the
    first reading, or counters that went backwards: the server rebooted in between)."""
    if previous is None or previous.cpu_total_seconds is None or previous.cpu_busy_seconds is None:
        return None
    if current.cpu_total_seconds is None or current.cpu_busy_seconds is None:
        return None
    total = current.cpu_total_seconds - previous.cpu_total_seconds
    busy = current.cpu_busy_seconds - previous.cpu_busy_seconds
    if total <= 0 or busy < 0:
        return None
    return _percent(busy, total)


def read(url: str, *, timeout: float, previous: ResourceFigures | None) -> ResourceFigures:
    """Fetch and parse one page; CPU against `previous` (the last reading of this server)."""
    figures = parse(fetch(url, timeout=timeout))
    return replace(figures, cpu_percent=cpu_percent(previous, figures))


def _percent(part: float, whole: float) -> float:
    return round(max(0.0, min(100.0, 100.0 * part / whole)), 1)
