"""The metrics this platform's processes count (docs/operations.md, "Metrics and health").

Counters and histograms only: in prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR
set before the process starts) every process writes its own memory-mapped file in that directory
and `/metrics` adds them up, so the web workers, the Celery pool processes and beat are counted
together. Figures that are a state rather than a count (queue depth, connections, messages sent)
are read at scrape time by penguinmails.metrics.collectors instead.

Every label is of low cardinality: a route name, a task name, a status class, an event kind.
Never a tenant, lead, message or path.
"""

from __future__ import annotations

import glob
import os
import socket

from prometheus_client import CollectorRegistry, Counter, Histogram, values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Which kind of process this is (web, worker, beat; "proc" for commands and tests): part of each
# metrics file's name, so a restarting web server clears its own files and nobody else's.
ROLE_ENV = "PM_METRICS_ROLE"
# Set by gunicorn's config in each worker: the slot of the worker it replaced (see slot_name).
SLOT_ENV = "PM_METRICS_SLOT"
_HOST = socket.gethostname().replace("_", "-")


def process_identifier() -> str:
    """Names this process's files: unique across the processes of every container that shares
    the directory (pids repeat across containers; host names do not)."""
    slot = os.environ.get(SLOT_ENV)
    if slot:
        return slot
    return f"{os.environ.get(ROLE_ENV, 'proc')}-{_HOST}-{os.getpid()}"


def slot_name(role: str, number: int) -> str:
    """A file name a recycled process hands to its successor: gunicorn replaces a worker every
    --max-requests, and with a file per pid the directory (and every scrape's reading) would grow
    by one file a recycle. The successor opens the same file and counts on from its values, so
    counters never step back and the files stay one set per worker slot."""
    return f"{role}-{_HOST}-slot{number}"


def multiproc_dir() -> str:
    return os.environ.get(MULTIPROC_ENV, "")


if multiproc_dir():
    os.makedirs(multiproc_dir(), exist_ok=True)
    # prometheus-client chose its value class when it was imported; ours names the files.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)


def start_process(role: str) -> int:
    """Called once when a web server, worker or beat starts: names this process's files after
    `role` and deletes the files that processes of the same role (or one-off commands) on this
    host, no longer running, left behind: a previous run's counters restart at zero, which
    Prometheus reads as a restart; a second worker started beside a running one keeps the first
    one's files. Returns how many files went."""
    os.environ[ROLE_ENV] = role
    path = multiproc_dir()
    if not path:
        return 0
    removed = 0
    # One-off commands (role "proc") leave a file set each: the next start of any role clears
    # those whose process is gone too.
    names = glob.glob(os.path.join(path, f"*_{role}-{_HOST}-*.db"))
    names += glob.glob(os.path.join(path, f"*_proc-{_HOST}-*.db"))
    for name in names:
        pid = name.rsplit("-", 1)[-1].removesuffix(".db")
        if pid.isdigit() and _alive(int(pid)):
            continue
        try:
            os.remove(name)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


# In single-process mode (no directory) the metrics live in this registry; in multiprocess mode
# it is unused and the files are read instead.
REGISTRY = CollectorRegistry(auto_describe=True)

# Buckets in seconds: requests and jobs from a millisecond to minutes; queries from 100 µs.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_JOB_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)
_QUERY_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 30.0)

HTTP_REQUESTS = Counter(
    "penguinmails_http_requests",
    "HTTP requests answered by Django, by route name, method and status class.",
    ["view", "method", "status"],
    registry=REGISTRY,
)
HTTP_ERRORS = Counter(
    "penguinmails_http_request_errors",
    "HTTP requests answered with a 5xx status (unhandled exceptions included), by route name.",
    ["view"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "penguinmails_http_request_duration_seconds",
    "Time from the first middleware to the response, by route name.",
    ["view"],
    buckets=_REQUEST_BUCKETS,
    registry=REGISTRY,
)
DB_QUERY_TIME = Histogram(
    "penguinmails_db_query_duration_seconds",
    "Time of each SQL statement sent to PostgreSQL (every process), by statement kind.",
    ["statement"],
    buckets=_QUERY_BUCKETS,
    registry=REGISTRY,
)
JOBS = Counter(
    "penguinmails_jobs",
    "Jobs run by workers, by task and outcome (completed, retrying, dead, lost).",
    ["task", "outcome"],
    registry=REGISTRY,
)
JOB_FAILURES = Counter(
    "penguinmails_job_failures",
    "Job runs that failed (retrying or dead), by task.",
    ["task"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "penguinmails_job_duration_seconds",
    "Time a job's run took from its claim to its recorded outcome, by task.",
    ["task"],
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
TRACKING_EVENTS = Counter(
    "penguinmails_tracking_events",
    "Tracking events received (open, click, unsubscribe), counted as they are buffered.",
    ["kind"],
    registry=REGISTRY,
)
