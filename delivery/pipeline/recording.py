"""Recording what happened to claimed deliveries: one short transaction per flush.

A flush writes, for a group of claimed deliveries:
- the Attempt rows (one INSERT), also for a result whose lease was lost;
- each delivery's new state, guarded by its lease_token (a delivery someone
  else reclaimed, cancelled or expired meanwhile is left alone);
- each subscription's failure counter once (pausing it, and holding its
  pending deliveries, at WEBHOOK_PAUSE_AFTER_FAILURES; disabling it on a
  410 Gone);
- each destination's circuit breaker once, and its backpressure when it
  answered 429/503 with Retry-After;
- and, after commit, countdown wake-ups for retries due within
  WEBHOOK_COUNTDOWN_MAX (later ones are left to dispatch_due).
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from delivery.models import Attempt, Delivery
from delivery.pipeline import attempt_log, counting, health, notifications, wakeups
from delivery.pipeline.items import (
    Item,
    Postponed,
    Sent,
    Settled,
    Skipped,
    describe,
)
from delivery.policy import breaker
from delivery.policy.classification import (
    Verdict,
    asked_wait,
    classify,
    destination_health,
)
from events.models import EventType
from subscriptions import services as subscription_services
from subscriptions.models import Subscription
from webhooks_project.lookups import LookupCache

Status = Delivery.Status
Outcome = Attempt.Outcome


@dataclass(frozen=True)
class RowUpdate:
    id: uuid.UUID
    token: uuid.UUID
    status: str
    attempts_count: int
    backoff_step: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    delivered_at: datetime | None


def record(
    items: Sequence[Item],
    *,
    breakers: dict[str, breaker.BreakerState],
) -> set[uuid.UUID]:
    """Write one flush; returns the ids of deliveries whose state was written."""
    if not items:
        return set()
    now = timezone.now()
    with transaction.atomic():
        verdicts = {
            item.delivery.id: classify(
                item.result,
                now=now,
                expires_at=item.delivery.expires_at,
                backoff_step=item.delivery.backoff_step,
                kind=item.delivery.kind,
            )
            for item in items
            if isinstance(item, Sent)
        }
        # Before the statuses are read, so a 410's retry is held at once.
        health.disable_gone(items)
        live = _subscription_statuses(items, verdicts)
        rows = [_row_update(item, verdicts, live, now) for item in items]
        kept = _write_rows(rows, now=now)
        _notify_exhausted(items, rows, kept, now=now)
        counting.count_statuses(row.status for row in rows if row.id in kept)
        counting.count_postponed(
            item.cause
            for item in items
            if isinstance(item, Postponed) and item.delivery.id in kept
        )
        _write_attempts(items, verdicts)
        health.count_failures(items, verdicts, kept, now=now)
        _expire_terminal(items, verdicts, kept, now=now)
        _write_breakers(items, verdicts, breakers, now=now)
        _write_backpressure(items, now=now)
        countdowns = _countdowns(rows, kept, now=now)
        if countdowns:
            transaction.on_commit(lambda: wakeups.send_wakeups(countdowns=countdowns))
    return kept


def _subscription_statuses(
    items: Sequence[Item], verdicts: dict[uuid.UUID, Verdict]
) -> dict[uuid.UUID, str]:
    # A delivery whose subscription was paused (or deleted) while its request
    # was in flight must not be retried behind the pause.
    ids = {
        item.delivery.subscription_id
        for item in items
        if item.delivery.subscription_id is not None
        and item.delivery.kind == Delivery.Kind.EVENT
        and (
            isinstance(item, (Skipped, Postponed))
            or (isinstance(item, Sent) and verdicts[item.delivery.id].retry_in)
        )
    }
    if not ids:
        return {}
    return dict(Subscription.objects.filter(id__in=ids).values_list("id", "status"))


def _unless_paused(status: str, delivery: Delivery, live: dict[uuid.UUID, str]) -> str:
    if status != Status.PENDING or delivery.kind != Delivery.Kind.EVENT:
        return status
    current = live.get(delivery.subscription_id) if delivery.subscription_id else None
    if current is None:
        return Status.CANCELLED
    if current in Subscription.HOLDING:
        return Status.HELD
    return status


def _row_update(
    item: Item,
    verdicts: dict[uuid.UUID, Verdict],
    live: dict[uuid.UUID, str],
    now: datetime,
) -> RowUpdate:
    delivery = item.delivery
    base: dict[str, Any] = {
        "id": delivery.id,
        "token": delivery.lease_token,
        "attempts_count": delivery.attempts_count,
        "backoff_step": delivery.backoff_step,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at,
    }
    if isinstance(item, Settled):
        due = now if item.status == Status.PENDING else None
        return RowUpdate(status=item.status, next_attempt_at=due, **base)
    if isinstance(item, Postponed):  # no attempt: attempts_count stays
        status = Status.PENDING if item.until <= delivery.expires_at else Status.EXPIRED
        status = _unless_paused(status, delivery, live)
        base["last_error"] = item.reason
        due = item.until if status == Status.PENDING else None
        return RowUpdate(status=status, next_attempt_at=due, **base)
    base["attempts_count"] += 1
    if isinstance(item, Skipped):
        status = Status.PENDING if item.until <= delivery.expires_at else Status.EXPIRED
        status = _unless_paused(status, delivery, live)
        base["last_error"] = (
            f"circuit breaker open for {item.destination}; "
            f"postponed to {item.until.isoformat()}"
        )
        due = item.until if status == Status.PENDING else None
        return RowUpdate(status=status, next_attempt_at=due, **base)
    verdict = verdicts[delivery.id]
    status = _unless_paused(verdict.status, delivery, live)
    base["backoff_step"] = verdict.backoff_step
    base["last_status_code"] = item.result.status_code
    base["last_error"] = "" if verdict.is_ack else describe(item.result)
    if verdict.is_ack:
        base["delivered_at"] = now
    due = now + verdict.retry_in if status == Status.PENDING else None
    return RowUpdate(status=status, next_attempt_at=due, **base)


def _notify_exhausted(
    items: Sequence[Item], rows: list[RowUpdate], kept: set[uuid.UUID], *, now: datetime
) -> None:
    """`delivery.exhausted` for each event delivery that just failed for good
    or expired (never for a notification's own delivery: no recursion)."""
    deliveries = {item.delivery.id: item.delivery for item in items}
    notices = [
        notifications.Notice(
            type=notifications.EXHAUSTED,
            webhook_id=delivery.subscription_id,
            client_id=delivery.client_id,
            reason=f"{row.status}: {row.last_error or 'no attempt succeeded'}",
            last_status_code=row.last_status_code,
            delivery_id=row.id,
        )
        for row in rows
        if row.id in kept
        and row.status in (Status.FAILED, Status.EXPIRED)
        and (delivery := deliveries[row.id]).kind == Delivery.Kind.EVENT
        and delivery.subscription_id is not None
    ]
    notifications.notify(notices, now=now)


def _write_rows(rows: list[RowUpdate], *, now: datetime) -> set[uuid.UUID]:
    """Guarded by lease_token; clears it. Returns the ids actually updated."""
    if connection.vendor == "postgresql":
        return _write_rows_postgresql(rows, now=now)
    kept = set()
    for row in rows:
        updated = Delivery.objects.filter(id=row.id, lease_token=row.token).update(
            status=row.status,
            attempts_count=row.attempts_count,
            backoff_step=row.backoff_step,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            lease_token=None,
            updated_at=now,
        )
        if updated:
            kept.add(row.id)
    return kept


_ROW = (
    "(%s::uuid, %s::uuid, %s, %s::integer, %s::integer, %s::timestamptz, "
    "%s::integer, %s, %s::timestamptz)"
)


def _write_rows_postgresql(rows: list[RowUpdate], *, now: datetime) -> set[uuid.UUID]:
    # One statement for the whole flush instead of one UPDATE per delivery.
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"UPDATE {table} AS d SET status = v.status, "
        "attempts_count = v.attempts_count, backoff_step = v.backoff_step, "
        "next_attempt_at = v.next_attempt_at, last_status_code = v.last_status_code, "
        "last_error = v.last_error, delivered_at = v.delivered_at, "
        "lease_token = NULL, updated_at = %s "
        f"FROM (VALUES {', '.join([_ROW] * len(rows))}) AS v (id, token, status, "
        "attempts_count, backoff_step, next_attempt_at, last_status_code, "
        "last_error, delivered_at) "
        "WHERE d.id = v.id AND d.lease_token = v.token RETURNING d.id"
    )
    params: list[Any] = [now]
    for row in rows:
        params += [
            str(row.id),
            str(row.token),
            row.status,
            row.attempts_count,
            row.backoff_step,
            row.next_attempt_at,
            row.last_status_code,
            row.last_error,
            row.delivered_at,
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row_id for (row_id,) in cursor.fetchall()}


def _write_attempts(items: Sequence[Item], verdicts: dict[uuid.UUID, Verdict]) -> None:
    attempts = []
    logged = []
    for item in items:
        number = item.delivery.attempts_count + 1
        if isinstance(item, Sent):
            result = item.result
            attempts.append(
                Attempt(
                    delivery_id=item.delivery.id,
                    number=number,
                    at=item.at,
                    duration_ms=max(result.duration_ms, 0),
                    status_code=result.status_code,
                    outcome=verdicts[item.delivery.id].outcome,
                    error=result.error,
                    response_excerpt=result.response_excerpt,
                )
            )
            logged.append(item.delivery)
        elif isinstance(item, Skipped):
            attempts.append(
                Attempt(
                    delivery_id=item.delivery.id,
                    number=number,
                    at=item.at,
                    outcome=Outcome.SKIPPED,
                    error=f"circuit breaker open for {item.destination}",
                )
            )
            logged.append(item.delivery)
    if attempts:
        _insert_attempts(attempts)
        counting.count_attempts(attempts)
        for delivery, attempt in zip(logged, attempts, strict=True):
            attempt_log.log_attempt(delivery=delivery, attempt=attempt)


_ATTEMPT_COLUMNS = ("delivery_id", *Attempt.RECORDED)


def _insert_attempts(attempts: list[Attempt]) -> None:
    if connection.vendor != "postgresql":
        Attempt.objects.bulk_create(attempts)
        return
    # One plain INSERT: bulk_create's per-object preparation was a tenth of a
    # busy worker's CPU. The ids are not needed afterwards.
    table = connection.ops.quote_name(Attempt._meta.db_table)
    row = "(" + ", ".join(["%s"] * len(_ATTEMPT_COLUMNS)) + ")"
    sql = (
        f"INSERT INTO {table} ({', '.join(_ATTEMPT_COLUMNS)}) "
        f"VALUES {', '.join([row] * len(attempts))}"
    )
    params = [getattr(a, column) for a in attempts for column in _ATTEMPT_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _expire_terminal(
    items: Sequence[Item],
    verdicts: dict[uuid.UUID, Verdict],
    kept: set[uuid.UUID],
    *,
    now: datetime,
) -> None:
    """A delivered terminal event (e.g. DELIVERED) ends the trackingId
    subscription that follows its resource. Publishing already ended the
    active ones; this ends one that was paused then (its delivery was held)
    once it was resumed and acknowledged the event."""
    candidates = [
        item.delivery
        for item in items
        if isinstance(item, Sent)
        and item.delivery.id in kept
        and verdicts[item.delivery.id].is_ack
        and item.delivery.kind == Delivery.Kind.EVENT
        and item.delivery.subscription is not None
        and item.delivery.subscription.tracking_id
        and item.delivery.subscription.tracking_id == item.delivery.event.resource_id
    ]
    if not candidates:
        return
    terminal = terminal_types()
    ended = {d.subscription_id for d in candidates if d.event.type in terminal}
    if ended:
        subscription_services.end_tracking_subscriptions(
            subscription_ids=ended, now=now
        )


def _write_breakers(
    items: Sequence[Item],
    verdicts: dict[uuid.UUID, Verdict],
    known: dict[str, breaker.BreakerState],
    *,
    now: datetime,
) -> None:
    # The breaker is shared by every tenant of the destination, so it reads
    # answers as signs of the host's health (destination_health), not as the
    # webhook's outcomes: another tenant's 404, or our own failure to build
    # or encode a request, must not postpone everyone's deliveries to it.
    outcomes: dict[str, list[str]] = defaultdict(list)
    for item in items:
        if isinstance(item, Sent) and item.delivery.kind == Delivery.Kind.EVENT:
            up = destination_health(item.result)
            if up is not None:
                outcomes[item.destination].append(
                    Outcome.ACK if up else Outcome.FAILURE
                )
    tallies = {dest: breaker.Tally.of(seq) for dest, seq in outcomes.items()}
    breaker.record_outcomes(tallies, known=known, now=now)
    # Later flushes of the same batch compare against what was just written.
    for dest, tally in tallies.items():
        if tally.is_news:
            known[dest] = breaker.apply(known.get(dest, breaker.CLOSED), tally, now=now)


def _write_backpressure(items: Sequence[Item], *, now: datetime) -> None:
    """A 429 or 503 with Retry-After postpones every delivery due to its
    destination (any tenant's) until then, capped by WEBHOOK_BACKPRESSURE_MAX
    (0 turns this off) and never beyond WEBHOOK_RETRY_AFTER_MAX, the cap of
    the answered delivery's own retry."""
    cap = min(settings.WEBHOOK_BACKPRESSURE_MAX, settings.WEBHOOK_RETRY_AFTER_MAX)
    waits: dict[str, datetime] = {}
    for item in items:
        if isinstance(item, Sent) and cap:
            asked = asked_wait(item.result, now=now)
            if asked is not None:
                until = now + min(asked, cap)
                waits[item.destination] = max(until, waits.get(item.destination, until))
    if waits:
        breaker.record_backpressure(waits, now=now)


def _countdowns(
    rows: list[RowUpdate], kept: set[uuid.UUID], *, now: datetime
) -> list[float]:
    """Countdown wake-ups for short retries: one per cluster of nearby due times
    (a wake-up at t claims everything due by t)."""
    horizon = settings.WEBHOOK_COUNTDOWN_MAX.total_seconds()
    delays = sorted(
        (row.next_attempt_at - now).total_seconds()
        for row in rows
        if row.id in kept
        and row.status == Status.PENDING
        and row.next_attempt_at is not None
        and (row.next_attempt_at - now).total_seconds() <= horizon
    )
    groups: list[list[float]] = []
    for delay in delays:
        if groups and delay - groups[-1][0] <= max(0.01, 0.02 * groups[-1][0]):
            groups[-1].append(delay)
        else:
            groups.append([delay])
    return [group[-1] for group in groups]


# The names of the terminal event types, read at most once per
# WEBHOOK_LOOKUP_CACHE_TTL by each process (a flush that acknowledges a
# tracked resource's event asks for them), and at once after this process
# saves or deletes an event type (DeliveryConfig.ready).
_terminal_names: LookupCache[frozenset[str]] = LookupCache("terminal event types")


def terminal_types() -> frozenset[str]:
    return _terminal_names.get(
        "all",
        lambda: frozenset(
            EventType.objects.filter(terminal=True).values_list("name", flat=True)
        ),
    )


def forget_terminal_types(**kwargs: object) -> None:
    """A receiver of post_save/post_delete of EventType."""
    _terminal_names.clear()
