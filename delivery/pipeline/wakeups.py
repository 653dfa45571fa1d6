"""Wake-ups: `deliver_due` messages on the broker, and the sweeper that sends
them for due rows whose wake-up was lost.

The broker only carries wake-ups; the rows are the truth. A wake-up that is
lost (broker down, Redis restarted) only delays deliveries until dispatch_due
finds the rows, so sending one never retries, never blocks for long and never
raises.

Publishing does not send its own wake-up: `wake` hands the count to this
process's sender thread, which sends at once when it is idle and, while a
send is in flight (or, under sustained load, until the next send is due:
one per WEBHOOK_WAKEUP_INTERVAL after a burst of WAKEUP_BURST), sums what
arrives into one follow-up send. A publish never waits for the broker (up
or down), and a stream of publishes costs a few messages a second, not one
each.
"""

import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from delivery.pipeline import claiming
from webhooks_project.celery import app

logger = logging.getLogger("webhooks.delivery")

DELIVER_DUE = "delivery.tasks.deliver_due"
# Wake-ups sent at once. A worker whose batch comes back full re-enqueues
# itself, so a backlog keeps this many claimers busy without flooding the queue.
MAX_WAKEUPS = 32
_ONE_RETRY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    "interval_max": 0,
}


def wakeups_for(due_count: int) -> int:
    """How many deliver_due messages `due_count` due deliveries deserve."""
    if due_count <= 0:
        return 0
    return min(math.ceil(due_count / settings.WEBHOOK_BATCH_SIZE), MAX_WAKEUPS)


def send_wakeups(*, count: int = 0, countdowns: Iterable[float] = ()) -> int:
    """Enqueue `count` immediate deliver_due messages and one per countdown
    (seconds), over one producer. Returns how many were sent; never raises."""
    delays: list[float | None] = [None] * max(count, 0)
    delays += [round(max(delay, 0.0), 3) for delay in countdowns]
    if not delays:
        return 0
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            # Fail at once when the broker refuses (no reconnect loop) ...
            producer.connection.ensure_connection(max_retries=0, timeout=2)
            for delay in delays:
                app.send_task(
                    DELIVER_DUE,
                    producer=producer,
                    countdown=delay,
                    # ... but reconnect once when a pooled connection went stale
                    # (e.g. Redis restarted since it was opened).
                    retry=True,
                    retry_policy=_ONE_RETRY,
                )
                sent += 1
    except Exception as exc:  # the broker may be down: the sweeper recovers
        logger.warning(
            "broker unreachable: %d of %d wake-ups not sent; dispatch_due will "
            "find the deliveries (%s: %s)",
            len(delays) - sent,
            len(delays),
            exc.__class__.__name__,
            exc,
        )
    return sent


def dispatch_due_deliveries() -> int:
    """The sweeper: wake workers for deliveries that are due (new ones whose
    wake-up was lost, retries, claims whose lease ran out). Returns how many
    wake-ups were sent. Cheap when nothing is due: one capped index scan."""
    cap = settings.WEBHOOK_BATCH_SIZE * MAX_WAKEUPS
    due = claiming.count_due(now=timezone.now(), cap=cap)
    return send_wakeups(count=wakeups_for(due)) if due else 0


# Sends a process may make back to back before WEBHOOK_WAKEUP_INTERVAL paces
# them: an idle or lightly loaded process never waits.
WAKEUP_BURST = 10
# Busy: the last send summed the counts of BUSY_PUBLISHES publishes or more,
# as under a stream of one-event publishes. A busy process is paced at
# BUSY_FACTOR intervals: each wake-up then claims twice as much, and a
# worker's cost is mostly per batch (bench/RESULTS.md: 12% less CPU per event
# in all, p50 about 15 ms later). An idle or lightly loaded process is not
# busy (each send carries one publish or a few), nor is one taking batch
# publishes at a few a second: their batches are large already, and fewer
# wake-ups would only mean fewer batches in flight (the burst scenario lost
# 5% when busy was counted in deliveries).
BUSY_PUBLISHES = 8
BUSY_FACTOR = 2


class _Coalescer:
    """One sender thread per process: wake() adds a due count and returns;
    the thread sends at once while its budget lasts (WAKEUP_BURST sends, one
    more earned every WEBHOOK_WAKEUP_INTERVAL, every BUSY_FACTOR intervals
    while busy) and, once it is spent, sums what arrives into one send per
    interval. A send costs ~1 ms of CPU and each message a worker's batch:
    one per publish would be a core's worth at 1,000 publishes/s and batches
    of one."""

    def __init__(self) -> None:
        self.reset()
        # A forked child (gunicorn, Celery's prefork) has no copy of the thread.
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._pending = 0
        self._publishes = 0  # wake() calls summed into the pending count
        self._idle = False  # the thread waits for a count (it needs a notify)
        self._sending = False
        self._busy = False
        self._budget = float(WAKEUP_BURST)
        self._earned_at = time.monotonic()
        self._thread: threading.Thread | None = None

    def wake(self, due_count: int) -> None:
        if due_count <= 0:
            return
        with self._ready:
            self._pending += due_count
            self._publishes += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="wake-ups", daemon=True
                )
                self._thread.start()
            elif self._idle:
                self._ready.notify_all()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending:
                    self._idle = True
                    self._ready.wait()
                self._idle = False
                self._sending = True
                while (hold := self._spend()) > 0:
                    self._ready.wait(hold)
                due, self._pending = self._pending, 0
                self._busy = self._publishes >= BUSY_PUBLISHES
                self._publishes = 0
            try:
                send_wakeups(count=wakeups_for(due))
            except Exception:  # never: send_wakeups does not raise; keep serving
                logger.exception("wake-up sender failed")
            finally:
                with self._ready:
                    self._sending = False
                    self._ready.notify_all()

    def _spend(self) -> float:
        """Take one send from the budget (0.0), or say how long until one is
        earned. Called with the lock held."""
        interval = settings.WEBHOOK_WAKEUP_INTERVAL.total_seconds()
        now = time.monotonic()
        if interval <= 0:
            return 0.0
        if self._busy:
            interval *= BUSY_FACTOR
        earned = (now - self._earned_at) / interval
        self._budget = min(float(WAKEUP_BURST), self._budget + earned)
        self._earned_at = now
        if self._budget >= 1:
            self._budget -= 1
            return 0.0
        return (1 - self._budget) * interval

    def flush(self, timeout: float) -> bool:
        """Wait until every count handed over has been sent (or tried);
        False if that took longer than `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._pending or self._sending:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._ready.wait(left)
        return True


_coalescer = _Coalescer()


def wake(*, due_count: int) -> None:
    """Ask for wake-ups for `due_count` newly due deliveries; returns at once
    (see the module doc). Call once they are committed."""
    _coalescer.wake(due_count)


def flush(*, timeout: float = 2.0) -> bool:
    """Send the wake-ups asked for and not yet sent; True when none is left
    (waits at most `timeout` seconds). At exit this runs by itself, so a
    short-lived process that publishes still wakes the workers."""
    return _coalescer.flush(timeout)


atexit.register(flush)
