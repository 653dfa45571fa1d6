"""The pipeline's Prometheus counts (webhooks_project/metrics.py), taken when
the transaction that wrote the rows commits, so they agree with the tables:
a rolled-back flush counts nothing."""

from collections import Counter
from collections.abc import Iterable, Mapping
from functools import partial

import prometheus_client
from django.db import transaction

from delivery.models import Attempt, Delivery
from delivery.pipeline.items import Postponed
from webhooks_project import metrics

for _outcome in Attempt.Outcome.values:
    # Every series exists from the start (at 0), so rate() sees the first one.
    metrics.attempts.labels(_outcome)
for _status in Delivery.FINISHED:
    metrics.deliveries_finished.labels(_status)
for _cause in Postponed.CAUSES:
    metrics.deliveries_postponed.labels(_cause)


def count_attempts(attempts: Iterable[Attempt]) -> None:
    """On commit: one attempt per row, and its duration unless it was skipped."""
    transaction.on_commit(partial(_count_attempts, list(attempts)))


def count_finished(counts: Mapping[str, int]) -> None:
    """On commit: counts[status] deliveries finished in each final status
    (other statuses are ignored)."""
    finished = {s: n for s, n in counts.items() if s in Delivery.FINISHED and n}
    if finished:
        transaction.on_commit(
            partial(_increment, metrics.deliveries_finished, finished)
        )


def count_statuses(statuses: Iterable[str]) -> None:
    """count_finished, one delivery per status in `statuses`."""
    count_finished(Counter(statuses))


def count_postponed(causes: Iterable[str]) -> None:
    """On commit: one postponed delivery per cause in `causes`."""
    counts = Counter(causes)
    if counts:
        transaction.on_commit(partial(_increment, metrics.deliveries_postponed, counts))


def _count_attempts(attempts: list[Attempt]) -> None:
    for attempt in attempts:
        metrics.attempts.labels(attempt.outcome).inc()
        if attempt.outcome != Attempt.Outcome.SKIPPED:
            metrics.attempt_duration.observe(attempt.duration_ms / 1000)


def _increment(counter: prometheus_client.Counter, counts: Mapping[str, int]) -> None:
    """counter's series of each label grows by its count."""
    for label, count in counts.items():
        counter.labels(label).inc(count)
