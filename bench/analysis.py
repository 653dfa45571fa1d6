"""From what was published and what the sink received to figures.

A delivery is identified by (sink path, webhook-id): every subscription has
its own path on the sink and the webhook-id is the event id, so a second
receipt of the same pair is a duplicate (at-least-once makes them possible;
the bench counts them).
"""

import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bench import procs
from bench.api import Published
from bench.sink_client import Receipt


@dataclass
class Delivered:
    expected: int
    received: int
    duplicates: int
    unexpected: int
    first_sent: float | None
    latencies_ms: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)  # sorted completion times

    @property
    def missing(self) -> int:
        return self.expected - self.received

    def checks(self) -> dict:
        return {
            "expected": self.expected,
            "received": self.received,
            "missing": self.missing,
            "duplicates": self.duplicates,
        }


def analyse(
    published: Iterable[Published],
    receipts: Iterable[Receipt],
    *,
    keep: Callable[[str], bool] = lambda path: True,
) -> Delivered:
    """Match receipts (on paths `keep` accepts) against the published events."""
    sent: dict[tuple[str, str], float] = {}
    for item in published:
        for path in item.paths:
            if keep(path):
                sent[(path, item.event_id)] = item.sent
    first: dict[tuple[str, str], Receipt] = {}
    duplicates = unexpected = 0
    for receipt in receipts:
        if not keep(receipt.path):
            continue
        pair = (receipt.path, receipt.webhook_id)
        if pair not in sent:
            unexpected += 1
        elif pair in first:
            duplicates += 1
        else:
            first[pair] = receipt
    return Delivered(
        expected=len(sent),
        received=len(first),
        duplicates=duplicates,
        unexpected=unexpected,
        first_sent=min(sent.values(), default=None),
        latencies_ms=sorted(
            (r.received - sent[pair]) * 1000 for pair, r in first.items()
        ),
        done=sorted(r.done for r in first.values()),
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def sustained_rate(done: Sequence[float]) -> float | None:
    """Deliveries/s between the 10th and the 90th percentile completion.

    Leaves out the ramp-up (first publishes, warming pools) and the tail (the
    last stragglers), which is what "sustained" means.
    """
    if len(done) < 10:
        return None
    low, high = int(len(done) * 0.1), int(len(done) * 0.9) - 1
    span = done[high] - done[low]
    return (high - low) / span if span > 0 else None


def end_to_end_rate(delivered: Delivered) -> float | None:
    """All received deliveries over first publish -> last completion."""
    if not delivered.done or delivered.first_sent is None:
        return None
    span = delivered.done[-1] - delivered.first_sent
    return len(delivered.done) / span if span > 0 else None


def median(values: Iterable[float]) -> float | None:
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


class RssSampler:
    """Samples the summed RSS of some processes every `interval` s in a thread."""

    def __init__(
        self, pids: Callable[[], list[int]], *, interval: float = 0.25
    ) -> None:
        self._pids = pids
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[tuple[float, int]] = []

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pids = self._pids()
        refreshed = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 2:
                pids, refreshed = self._pids(), time.monotonic()
            rss = procs.rss_bytes(pids)
            if rss:
                self.samples.append((time.time(), rss))
            self._stop.wait(self._interval)

    def figures(self, start: float, end: float) -> dict:
        """Peak RSS and growth from the first to the last quarter of [start, end]."""
        window = [rss for at, rss in self.samples if start <= at <= end]
        if len(window) < 8:
            return {}
        quarter = len(window) // 4
        first = statistics.mean(window[:quarter])
        last = statistics.mean(window[-quarter:])
        return {
            "memory.peak_rss_mb": max(window) / 2**20,
            "memory.first_quarter_mb": first / 2**20,
            "memory.last_quarter_mb": last / 2**20,
            "memory.growth_pct": (last / first - 1) * 100,
        }
