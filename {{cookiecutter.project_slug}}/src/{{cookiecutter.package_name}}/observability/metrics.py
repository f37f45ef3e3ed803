"""The service's Prometheus metrics, and the text a scrape gets.

Under `serve --workers N` each worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (the CLI makes one), and a scrape of any worker reads
them all: counters and histograms add up across workers, gauges of pools add up
across the live ones, gauges of replicas take the highest. One process alone
keeps them in memory.
"""

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# From half a millisecond (a free connection) to the longest DB_POOL_TIMEOUT worth waiting.
WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
POOL_LABELS = ("pool", "server")

http_requests = Counter(
    "http_server_requests",
    "HTTP requests answered, by route template, method and status.",
    ("method", "route", "status"),
)
http_duration = Histogram(
    "http_server_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ("method", "route"),
)
http_errors = Counter(
    "http_server_error_answers",
    "Error answers by status and the error contract's code (503/504: the database's state).",
    ("status", "code"),
)

pool_size = Gauge(
    "db_pool_size", "Connections each pool keeps.", POOL_LABELS, multiprocess_mode="livesum"
)
pool_checked_out = Gauge(
    "db_pool_checked_out",
    "Connections in use.",
    POOL_LABELS,
    multiprocess_mode="livesum",
)
pool_overflow = Gauge(
    "db_pool_overflow",
    "Connections open beyond the pool's size (DB_MAX_OVERFLOW).",
    POOL_LABELS,
    multiprocess_mode="livesum",
)
pool_waiting = Gauge(
    "db_pool_waiting",
    "Callers waiting for a connection.",
    POOL_LABELS,
    multiprocess_mode="livesum",
)
pool_wait = Histogram(
    "db_pool_checkout_wait_seconds",
    "Time to get a connection from the pool.",
    POOL_LABELS,
    buckets=WAIT_BUCKETS,
)
pool_timeouts = Counter(
    "db_pool_checkout_timeouts",
    "Callers that got no connection within DB_POOL_TIMEOUT (answered 503 service_busy).",
    POOL_LABELS,
)

replica_state = Gauge(
    "db_replica_state",
    "1 for each replica's current state (ok, starting, lagging, unreachable, ...).",
    ("replica", "state"),
    multiprocess_mode="livemax",
)
replica_lag = Gauge(
    "db_replica_lag_milliseconds",
    "How far each replica is behind the primary, as its last check found (NaN: unknown).",
    ("replica",),
    multiprocess_mode="livemax",
)
reads = Counter(
    "db_reads",
    "Read-only sessions by the server they started on (a replica's name, or primary).",
    ("server",),
)
read_fallbacks = Counter(
    "db_read_fallbacks",
    "Reads that ran on the primary although replicas are configured, and why.",
    ("reason",),
)

transaction_retries = Counter(
    "db_transaction_retries",
    "Units of work run again after PostgreSQL cancelled them (40001, 40P01).",
    ("sqlstate",),
)
slow_statements = Counter(
    "db_slow_statements",
    "Statements slower than DB_SLOW_QUERY_MS.",
    POOL_LABELS,
)
migration_revision = Gauge(
    "db_migration_revision",
    "1 for the revision the database was at when the service started.",
    ("revision",),
    multiprocess_mode="livemax",
)


def scrape_registry() -> CollectorRegistry:
    """The registry a scrape reads: every worker's files, or this process's own metrics."""
    directory = os.environ.get(MULTIPROCESS_DIR)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    # prometheus_client's multiprocess module has no annotations.
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> tuple[bytes, str]:
    """The text format of every metric, and its content type."""
    return generate_latest(scrape_registry()), CONTENT_TYPE_LATEST


def forget_dead_workers() -> None:
    """Drop the live gauges of worker processes that are gone (uvicorn restarts those that
    die), so that a pool no process has any more is not counted."""
    directory = os.environ.get(MULTIPROCESS_DIR)
    if not directory:
        return
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not process_exists(pid):
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
