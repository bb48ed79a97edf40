"""Reading the metrics back in Python: the same sums a scrape returns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from penguinmails.metrics import instruments


def counted_registry(path: str | None = None) -> CollectorRegistry:
    """A registry of the counted metrics: every process's files under `path` (the process's
    PROMETHEUS_MULTIPROC_DIR by default), or this process's own figures without one."""
    path = instruments.multiproc_dir() if path is None else path
    if not path:
        return instruments.REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=path)
    return registry


def snapshot(path: str | None = None) -> list[Metric]:
    return list(counted_registry(path).collect())


def read(sample: str, path: str | None = None, **labels: str) -> float:
    """The sum of the samples named `sample` (`penguinmails_jobs_total`, say) whose labels
    include `labels`, over every process."""
    total = 0.0
    for metric in snapshot(path):
        for s in metric.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total
