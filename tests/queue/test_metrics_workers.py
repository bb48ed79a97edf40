"""/metrics counts the jobs of several worker processes together (prometheus-client's
multiprocess mode): two real Celery workers, each one pool process, share a
PROMETHEUS_MULTIPROC_DIR; the scrape adds up their files."""

from __future__ import annotations

import glob
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings as SettingsWrapper

from penguinmails import metrics
from penguinmails.models import Job, JobStatus
from penguinmails.queue import live
from penguinmails.queue.producer import enqueue
from penguinmails.tasks import run_job
from tests.queue.conftest import Worker, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TOKEN = "workers-scrape-token"


@pytest.fixture
def metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "metrics"
    path.mkdir()
    # The workers inherit it (start_worker copies this process's environment).
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    return path


@pytest.fixture
def two_workers(
    metrics_dir: Path, private_redis: str, tmp_path: Path
) -> Iterator[dict[str, Worker]]:
    started: dict[str, Worker] = {}
    try:
        for name in ("m1", "m2"):
            started[name] = start_worker(name, private_redis, tmp_path)
        yield started
    finally:
        for worker in started.values():
            worker.stop()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(settings: SettingsWrapper, path: Path) -> Samples:
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = str(path)
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def completed_in(files: list[str], task: str) -> float:
    total = 0.0
    for metric in MultiProcessCollector.merge(files):
        for s in metric.samples:
            if s.name == "penguinmails_jobs_total" and s.labels.get("task") == task:
                total += s.value if s.labels.get("outcome") == "completed" else 0
    return total


def test_it_counts_the_jobs_of_two_worker_processes_together(
    two_workers: dict[str, Worker], metrics_dir: Path, settings: SettingsWrapper
) -> None:
    noops = [enqueue("test.noop", priority=100) for _ in range(10)]
    token = uuid.uuid4().hex
    live.client().set(f"test:fail:{token}", 1)  # test.fail fails (transiently) while this exists
    failing = enqueue("test.fail", {"token": token}, priority=100)
    # Six to one worker node, four and the failing job to the other.
    for i, job in enumerate(noops):
        run_job.apply_async((job.pk,), queue="node-m1" if i < 6 else "node-m2")
    run_job.apply_async((failing.pk,), queue="node-m2")
    done = [JobStatus.COMPLETED, JobStatus.RETRYING]
    ids = [j.pk for j in [*noops, failing]]
    wait_for(
        lambda: Job.objects.filter(pk__in=ids, status__in=done).count() == len(ids),
        timeout=60,
        what="all jobs run",
    )

    # Each pool process wrote its own file; neither saw all ten.
    files = glob.glob(str(metrics_dir / "counter_worker-*.db"))
    by_pid = {re.sub(r".*-(\d+)\.db$", r"\1", f): f for f in files}
    counts = sorted(completed_in([f], "test.noop") for f in by_pid.values())
    assert [c for c in counts if c] == [4.0, 6.0]

    samples = scrape(settings, metrics_dir)
    completed = frozenset({("task", "test.noop"), ("outcome", "completed")})
    assert samples[("penguinmails_jobs_total", completed)] == 10
    duration = frozenset({("task", "test.noop")})
    assert samples[("penguinmails_job_duration_seconds_count", duration)] == 10
    retrying = frozenset({("task", "test.fail"), ("outcome", "retrying")})
    assert samples[("penguinmails_jobs_total", retrying)] == 1
    assert samples[("penguinmails_job_failures_total", frozenset({("task", "test.fail")}))] == 1
    # The workers' SQL statements are timed too, in the same files.
    select = frozenset({("statement", "with")})
    assert samples[("penguinmails_db_query_duration_seconds_count", select)] >= 11
    # Python reads the same sums (what an alert rule would use).
    assert metrics.read("penguinmails_jobs_total", str(metrics_dir), task="test.noop") == 10
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_dir)
