"""The service's Prometheus counters and histogram, and the registry /metrics serves.

Every process increments them where the work happens: web processes count
published events, workers count attempts and finished deliveries. A scrape
lands on one gunicorn worker, so the counts of all processes of a host are
summed with prometheus-client's multiprocess mode: with
PROMETHEUS_MULTIPROC_DIR set (in the environment, before Python starts: the
library reads it at import), each process writes its values to its own
memory-mapped files in that directory and the scrape adds them up. Files of
processes that ended stay, so a total never goes down when a worker is
recycled. Without the variable (tests, a single process) the values live in
this process and only it is scraped.

docs/operations.md#metrics has the deployment rules (one directory per host,
shared by web and workers, emptied before they start) and the scrape config.
"""

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.registry import Collector

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROC_DIR:
    # Each process opens its files here when a metric is created (below).
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

# Seconds; WEBHOOK_TIMEOUT (10 s by default) bounds an attempt.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# registry=None: the scrape registry below decides what is exported, so the
# library's global registry (and its process collectors) stays out of it.
attempts = Counter(
    "webhook_attempts",
    "Attempts recorded, by outcome (skipped: postponed by an open circuit "
    "breaker, no request made).",
    ["outcome"],
    registry=None,
)
attempt_duration = Histogram(
    "webhook_attempt_duration_seconds",
    "Duration of the requests made (skipped attempts make none).",
    buckets=DURATION_BUCKETS,
    registry=None,
)
events_published = Counter(
    "webhook_events_published",
    "Events published (idempotent repeats are not counted).",
    registry=None,
)
deliveries_finished = Counter(
    "webhook_deliveries_finished",
    "Deliveries that reached a final status, by status.",
    ["status"],
    registry=None,
)
deliveries_postponed = Counter(
    "webhook_deliveries_postponed",
    "Deliveries put off without a request or an attempt, by reason: the "
    "webhook's rate limit had no room (rate_limit), or its destination had "
    "asked everyone to wait (retry_after).",
    ["reason"],
    registry=None,
)
INSTRUMENTS = (
    attempts,
    attempt_duration,
    events_published,
    deliveries_finished,
    deliveries_postponed,
)


def scrape_registry(*collectors: Collector) -> CollectorRegistry:
    """The instruments of every process of this host (multiprocess mode) or of
    this process, and `collectors` (figures read at scrape time)."""
    registry = CollectorRegistry()
    if MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    else:
        for instrument in INSTRUMENTS:
            registry.register(instrument)
    for collector in collectors:
        registry.register(collector)
    return registry


def mark_process_dead(pid: int) -> None:
    """Gunicorn's child_exit hook: drop a dead process's live-gauge files
    (none today; its counter files stay, they are part of the totals)."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)
