"""A subscription's health: its hot failure counter, written once per flush.

The counter (consecutive_failures, last_success_at, last_failure_at) is raw SQL
on purpose: it is written for every subscription with a result in a flush, so
a busy subscription costs one UPDATE, and an incrementing one returns the new
count without a read. Reaching WEBHOOK_PAUSE_AFTER_FAILURES pauses the
subscription through subscriptions.services.pause_subscription, the one writer
of its status; a `410 Gone` answer disables it (disable_subscription).
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q

from delivery.models import Delivery
from delivery.pipeline.items import Item, Sent, describe
from delivery.policy import breaker
from delivery.policy.classification import Verdict
from delivery.sender.types import SendResult
from subscriptions import services as subscription_services
from subscriptions.models import Subscription

# last_success_at is informational: a busy subscription writes it at most this often.
_SUCCESS_RESOLUTION = timedelta(seconds=1)


def _dt(value: datetime) -> Any:
    """A datetime as raw SQL wants it on this database."""
    return connection.ops.adapt_datetimefield_value(value)


def _id(value: uuid.UUID) -> Any:
    """A UUID as raw SQL wants it on this database (SQLite stores hex)."""
    return Subscription._meta.pk.get_db_prep_value(value, connection)


def count_failures(
    items: Sequence[Item],
    verdicts: dict[uuid.UUID, Verdict],
    kept: set[uuid.UUID],
    *,
    now: datetime,
) -> None:
    """Once per subscription: reset on ack, add failures, pause at the threshold."""
    outcomes: dict[uuid.UUID, list[str]] = defaultdict(list)
    last_failure: dict[uuid.UUID, SendResult] = {}
    subscriptions: dict[uuid.UUID, Subscription | None] = {}
    for item in items:
        delivery = item.delivery
        if (
            not isinstance(item, Sent)
            or delivery.id not in kept
            or delivery.kind != Delivery.Kind.EVENT
            or delivery.subscription_id is None
        ):
            continue
        verdict = verdicts[delivery.id]
        subscriptions[delivery.subscription_id] = delivery.subscription
        outcomes[delivery.subscription_id].append(verdict.outcome)
        if verdict.endpoint_failure:
            last_failure[delivery.subscription_id] = item.result
    tallies = {sid: breaker.Tally.of(seq) for sid, seq in outcomes.items()}

    only_acks = [
        sid
        for sid, t in tallies.items()
        if t.acked and not t.failures and not _recently_healthy(subscriptions[sid], now)
    ]
    if only_acks:
        Subscription.objects.filter(id__in=only_acks).filter(
            Q(consecutive_failures__gt=0)
            | Q(last_success_at__isnull=True)
            | Q(last_success_at__lt=now - _SUCCESS_RESOLUTION)
        ).update(consecutive_failures=0, last_success_at=now, updated_at=now)
        for sid in only_acks:
            # The batch's deliveries share this object: its later flushes
            # see the success just written and skip the update.
            subscription = subscriptions[sid]
            subscription.consecutive_failures = 0
            subscription.last_success_at = now

    table = connection.ops.quote_name(Subscription._meta.db_table)
    for sid in sorted(sid for sid, t in tallies.items() if t.failures):
        tally = tallies[sid]
        if tally.acked:
            sql = (
                f"UPDATE {table} SET consecutive_failures = %s, last_success_at = %s, "
                "last_failure_at = %s, updated_at = %s WHERE id = %s "
                "RETURNING consecutive_failures, status"
            )
            params: list[Any] = [tally.failures, _dt(now), _dt(now), _dt(now), _id(sid)]
        else:
            sql = (
                f"UPDATE {table} SET consecutive_failures = consecutive_failures + %s, "
                "last_failure_at = %s, updated_at = %s WHERE id = %s "
                "RETURNING consecutive_failures, status"
            )
            params = [tally.failures, _dt(now), _dt(now), _id(sid)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            continue
        failures, status = row
        if (
            failures >= settings.WEBHOOK_PAUSE_AFTER_FAILURES
            and status == Subscription.Status.ACTIVE
        ):
            _pause(subscriptions[sid], failures, last_failure.get(sid))


def disable_gone(items: Sequence[Item]) -> None:
    """A receiver that answers 410 Gone says the endpoint is no more: its
    webhook is disabled (its deliveries held) instead of retried until its
    deliveries expire. Test deliveries never change a webhook."""
    gone = {
        item.delivery.subscription_id: item
        for item in items
        if isinstance(item, Sent)
        and item.result.status_code == 410
        and item.delivery.kind == Delivery.Kind.EVENT
        and item.delivery.subscription is not None
    }
    for item in gone.values():
        subscription_services.disable_subscription(
            subscription=item.delivery.subscription,
            reason=f"the receiver answered HTTP 410 Gone at {item.at.isoformat()}",
            last_status_code=410,
        )


def _recently_healthy(subscription: Subscription | None, now: datetime) -> bool:
    # As read when the batch was claimed: no failures and a recent success, so
    # a busy subscription is not written on every flush.
    return (
        subscription is not None
        and subscription.consecutive_failures == 0
        and subscription.last_success_at is not None
        and subscription.last_success_at >= now - _SUCCESS_RESOLUTION
    )


def _pause(
    subscription: Subscription | None,
    failures: int,
    last: SendResult | None,
) -> None:
    if subscription is None:  # deleted since the claim: nothing to pause
        return
    reason = f"{failures} consecutive failed attempts"
    if last is not None:
        reason += f"; last: {describe(last)}"
    subscription_services.pause_subscription(
        subscription=subscription,
        reason=reason,
        last_status_code=last.status_code if last is not None else None,
    )
