"""Bounded tables: events, their deliveries and attempts past WEBHOOK_RETENTION
are deleted, by beat (tasks.prune_old_rows) and by `manage.py prune_deliveries`.

What goes, oldest first:
1. finished deliveries (succeeded, failed, expired, cancelled) of events
   published before the cutoff, not changed since it, with their attempts;
2. events published before the cutoff that have no delivery left: an event
   with a delivery still pending or held (or changed within the retention)
   stays, whole;
3. attempts older than the cutoff of the deliveries that stay.

Each step is one statement per chunk of at most PRUNE_CHUNK deliveries (or
events, or attempts), committed on its own: locks are held for one short
statement, rows a worker has locked are skipped (SKIP LOCKED) and taken by a
later run. Steps 1 and 2 walk the events by `created_at` (index
event_created) from where the previous chunk ended, so no chunk rereads what
an earlier one kept. After each chunk the prune rests so that it works at
most WEBHOOK_PRUNE_DUTY of the time (20%: four times as long as the chunk
took): a share of one database core goes to pruning, delivery's statements
keep theirs, and a busy database (slower chunks) gets longer rests.

A delivery retried or replayed while its chunk runs is no longer finished:
the statement's own condition, re-checked on the row's newest version, keeps
it, and the database's foreign key refuses to delete its event; that chunk
is rolled back and the walk goes on (the next run retries it).
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection
from django.utils import timezone

from delivery.models import Attempt, Delivery
from events.models import Event

logger = logging.getLogger("webhooks.delivery")

# Rows (deliveries, events or attempts) one statement deletes at most; a
# delivery's attempts go with it (a dozen at most with the default schedule).
PRUNE_CHUNK = 1000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Where a step's walk over the events goes on from (None: the oldest).
Cursor = datetime | tuple[datetime, UUID] | None


@dataclass
class PruneResult:
    events: int = 0
    deliveries: int = 0
    attempts: int = 0
    seconds: float = 0.0
    # False when the time budget ran out before everything old was gone.
    complete: bool = field(default=True)

    @property
    def rows(self) -> int:
        return self.events + self.deliveries + self.attempts


def prune(
    *, older_than: timedelta | None = None, time_budget: timedelta | None = None
) -> PruneResult:
    """Delete what is older than `older_than` (default WEBHOOK_RETENTION), in
    chunks, until nothing old is left or `time_budget` has passed (None: no
    limit). Idempotent; safe to run in several processes at once."""
    cutoff = timezone.now() - (older_than or settings.WEBHOOK_RETENTION)
    started = time.monotonic()
    deadline = None if time_budget is None else started + time_budget.total_seconds()
    # WEBHOOK_PRUNE_DUTY 20%: rest 4 times as long as each chunk took.
    duty = settings.WEBHOOK_PRUNE_DUTY
    pause_ratio = 1 / duty - 1
    result = PruneResult()
    steps = (_deliveries_of_old_events, _old_events, _old_attempts)
    for step in steps:
        after: Cursor = None
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                result.complete = False
                break
            chunk_started = time.monotonic()
            try:
                counts, following = step(cutoff, after)
            except IntegrityError:
                # A delivery of the chunk came back to life (see above).
                logger.info("prune: a chunk changed while it was deleted; skipped")
                counts, following = (0, 0, 0), None
            result.events += counts[0]
            result.deliveries += counts[1]
            result.attempts += counts[2]
            # Done, or no progress (a whole chunk locked by others meanwhile).
            if following is None or (following == after and not any(counts)):
                break
            after = following
            time.sleep((time.monotonic() - chunk_started) * pause_ratio)
        if not result.complete:
            break
    result.seconds = time.monotonic() - started
    return result


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "event": quote(Event._meta.db_table),
        "delivery": quote(Delivery._meta.db_table),
        "attempt": quote(Attempt._meta.db_table),
    }


def _params(cutoff: datetime, after: datetime | None) -> dict[str, object]:
    return {
        "cutoff": cutoff,
        "after": after or _EPOCH,
        "limit": PRUNE_CHUNK,
        "finished": list(Delivery.FINISHED),
    }


def _deliveries_of_old_events(
    cutoff: datetime, after: Cursor
) -> tuple[tuple[int, int, int], Cursor]:
    """One chunk of step 1; returns (counts, where the next chunk starts, or
    None when this step is done). `after` is inclusive: an event whose
    deliveries did not all fit in the chunk is walked again."""
    sql = """
        WITH chosen AS (
            SELECT d.id, e.created_at
            FROM {event} e JOIN {delivery} d ON d.event_id = e.id
            WHERE e.created_at >= %(after)s AND e.created_at < %(cutoff)s
              AND d.status = ANY(%(finished)s) AND d.updated_at < %(cutoff)s
            ORDER BY e.created_at
            LIMIT %(limit)s
            FOR UPDATE OF d SKIP LOCKED
        ), gone AS (
            DELETE FROM {delivery} d USING chosen
            WHERE d.id = chosen.id
              AND d.status = ANY(%(finished)s) AND d.updated_at < %(cutoff)s
            RETURNING d.id
        ), attempts AS (
            DELETE FROM {attempt} a USING gone WHERE a.delivery_id = gone.id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM chosen), (SELECT max(created_at) FROM chosen),
               (SELECT count(*) FROM gone), (SELECT count(*) FROM attempts)
    """.format(**_tables())
    with connection.cursor() as cursor:
        cursor.execute(sql, _params(cutoff, after))
        chosen, last, deliveries, attempts = cursor.fetchone()
    following = last if chosen == PRUNE_CHUNK else None
    return (0, deliveries, attempts), following


def _old_events(
    cutoff: datetime, after: Cursor
) -> tuple[tuple[int, int, int], Cursor | None]:
    """One chunk of step 2: old events no delivery refers to any more. The
    walk's cursor is (created_at, id) of the last event walked: exclusive,
    since a walked event is either gone or kept for good."""
    last_at, last_id = after or (None, None)
    sql = """
        WITH walked AS (
            SELECT e.id, e.created_at
            FROM {event} e
            WHERE e.created_at >= %(after)s AND e.created_at < %(cutoff)s
              AND (%(last_id)s::uuid IS NULL
                   OR (e.created_at, e.id) > (%(after)s, %(last_id)s::uuid))
            ORDER BY e.created_at, e.id
            LIMIT %(limit)s
        ), gone AS (
            DELETE FROM {event} e USING walked
            WHERE e.id = walked.id
              AND NOT EXISTS (SELECT 1 FROM {delivery} d WHERE d.event_id = e.id)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM walked), (SELECT count(*) FROM gone), last.*
        FROM (SELECT created_at, id FROM walked
              ORDER BY created_at DESC, id DESC LIMIT 1) AS last
    """.format(**_tables())
    with connection.cursor() as cursor:
        cursor.execute(sql, {**_params(cutoff, last_at), "last_id": last_id})
        walked, events, next_at, next_id = cursor.fetchone() or (0, 0, None, None)
    following = (next_at, next_id) if walked == PRUNE_CHUNK else None
    return (events, 0, 0), following


def _old_attempts(
    cutoff: datetime, after: Cursor
) -> tuple[tuple[int, int, int], Cursor]:
    """One chunk of step 3: attempts older than the cutoff whose delivery stays."""
    sql = """
        WITH gone AS (
            DELETE FROM {attempt} WHERE id IN (
                SELECT id FROM {attempt} WHERE at < %(cutoff)s
                LIMIT %(limit)s FOR UPDATE SKIP LOCKED
            )
            RETURNING 1
        )
        SELECT count(*) FROM gone
    """.format(**_tables())
    with connection.cursor() as cursor:
        cursor.execute(sql, _params(cutoff, None))
        (attempts,) = cursor.fetchone()
    # Deleted rows are gone: each chunk starts from the oldest again.
    return (0, 0, attempts), (_EPOCH if attempts == PRUNE_CHUNK else None)
