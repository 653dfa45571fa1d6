"""Wake-ups: `deliver_due` messages on the broker, and the sweeper that sends
them for due rows whose wake-up was lost.

The broker only carries wake-ups; the rows are the truth. A wake-up that is
lost (broker down, Redis restarted) only delays deliveries until dispatch_due
finds the rows, so sending one never retries, never blocks for long and never
raises.
"""

import logging
import math
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
