"""Replaying deliveries: the same event sent again to the same webhook, as a
new delivery (the originals, and their attempts, stay as they were)."""

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from delivery.models import Delivery
from delivery.services import TooManyDeliveries, wake_workers_now
from subscriptions.models import Subscription

logger = logging.getLogger("webhooks.delivery")

# Deliveries are read and created this many at a time, each chunk in its own
# short transaction, so a large replay neither holds locks long nor builds
# one huge INSERT.
REPLAY_CHUNK = 1000


# POST /api/v1/webhooks/{id}/replay: the most deliveries one call considers;
# a range holding more is refused (TooManyDeliveries), not cut short.
WEBHOOK_REPLAY_MAX = 10_000
# The same replay request (webhook, since, until, status) again within this
# window answers the first call's result and replays nothing.
WEBHOOK_REPLAY_WINDOW = timedelta(minutes=10)
# What a webhook's replay may select: finished deliveries.
WEBHOOK_REPLAY_STATUSES = (
    Delivery.Status.FAILED,
    Delivery.Status.EXPIRED,
    Delivery.Status.CANCELLED,
    Delivery.Status.SUCCEEDED,
)
WEBHOOK_REPLAY_DEFAULT_STATUSES = (Delivery.Status.FAILED, Delivery.Status.EXPIRED)


@dataclass(frozen=True)
class ReplayResult:
    created: int
    skipped: int


def replay_webhook(
    *,
    subscription: Subscription,
    since: datetime,
    until: datetime | None = None,
    statuses: Sequence[str] = WEBHOOK_REPLAY_DEFAULT_STATUSES,
) -> ReplayResult:
    """Replay (replay_deliveries) the subscription's `event` deliveries
    created in [since, until) (until None: now) whose status is in
    `statuses`, for the API. Only the webhook's own deliveries, so only
    events it received.

    An (event, webhook) is replayed only from its newest delivery: once
    replayed, its original is superseded and skipped, so a repeat does not
    send it again (unless the replay itself ends in one of `statuses`).
    Besides, the same request within WEBHOOK_REPLAY_WINDOW answers the first
    result and does nothing (a record in the cache; with the cache down,
    the rules above still apply), and while the first call is still running
    a second raises ReplayInProgress. Raises TooManyDeliveries when more
    than WEBHOOK_REPLAY_MAX deliveries match.
    """
    key = _replay_key(subscription.pk, since, until, statuses)
    answered = _cache_get(key)
    if answered is None and not _reserve(key):
        answered = _cache_get(key)  # the other call may have finished since
    if answered == _RUNNING:
        raise ReplayInProgress("the same replay is still running; try again shortly")
    if answered is not None:
        return ReplayResult(created=answered[0], skipped=answered[1])
    try:
        result = _replay_range(subscription, since, until, statuses)
    except BaseException:
        _cache_delete(key)
        raise
    _cache_set(key, (result.created, result.skipped))
    return result


def _replay_range(
    subscription: Subscription,
    since: datetime,
    until: datetime | None,
    statuses: Sequence[str],
) -> ReplayResult:
    """What replay_webhook does once it holds the request's record."""
    selected = Delivery.objects.filter(
        subscription=subscription,
        kind=Delivery.Kind.EVENT,
        status__in=list(statuses),
        created_at__gte=since,
    )
    if until is not None:
        selected = selected.filter(created_at__lt=until)
    total = selected[: WEBHOOK_REPLAY_MAX + 1].count()
    if total > WEBHOOK_REPLAY_MAX:
        raise TooManyDeliveries(WEBHOOK_REPLAY_MAX)
    newer = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        event_id=OuterRef("event_id"),
        created_at__gt=OuterRef("created_at"),
    )
    newest = selected.filter(~Exists(newer))
    created = replay_deliveries(deliveries=newest).created
    return ReplayResult(created=created, skipped=total - created)


def _replay_key(
    subscription_id: uuid.UUID,
    since: datetime,
    until: datetime | None,
    statuses: Sequence[str],
) -> str:
    request = json.dumps(
        [
            str(subscription_id),
            since.isoformat(),
            until.isoformat() if until is not None else None,
            sorted(set(statuses)),
        ]
    )
    return "webhook-replay:" + hashlib.sha256(request.encode()).hexdigest()


# The record of a replay that has started and not finished: a second call
# with the same body meanwhile is refused (ReplayInProgress) rather than run
# alongside it, which could send an event twice before either commits.
_RUNNING = "running"


class ReplayInProgress(Exception):
    """The same replay request is being carried out by another call."""


def _reserve(key: str) -> bool:
    """Record that this call carries out the request (an atomic add); False
    when another call recorded it first. True with the cache down."""
    try:
        return cache.add(key, _RUNNING, WEBHOOK_REPLAY_WINDOW.total_seconds())
    except Exception:
        logger.warning("cache unavailable; replay not deduplicated by its record")
        return True


def _cache_delete(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:
        logger.warning("cache unavailable; replay record not dropped")


def _cache_get(key: str) -> tuple[int, int] | str | None:
    try:
        return cache.get(key)
    except Exception:
        logger.warning("cache unavailable; replay not deduplicated by its record")
        return None


def _cache_set(key: str, value: tuple[int, int]) -> None:
    try:
        cache.set(key, value, WEBHOOK_REPLAY_WINDOW.total_seconds())
    except Exception:
        logger.warning("cache unavailable; replay record not kept")


def replay_deliveries(
    *,
    deliveries: QuerySet[Delivery],
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Create one new delivery per selected (event, webhook): kind `event`,
    `pending` and due now, with a fresh TTL from now (its webhook's
    delivery_ttl, else WEBHOOK_DELIVERY_TTL).
    Workers are woken when each chunk commits.

    Skipped (and counted in `skipped`), without error:
    - deliveries whose webhook is deleted, paused or expired (status, or past
      its expires_at);
    - `test` deliveries (a test is sent on demand, not replayed as an event);
    - deliveries still pending or held (they will be sent anyway), and any
      whose (event, webhook) already has a pending or held delivery, so
      running the same replay twice does not send twice;
    - a second selected delivery of an (event, webhook) already replayed here.

    Rows created after the call started are never selected, even if the
    queryset would match them. `on_progress(n)` is called after each chunk
    with how many selected deliveries have been processed so far.
    """
    started = timezone.now()
    # Keyset over the primary key: stable however the caller's queryset is
    # ordered, and cheap at any depth.
    selected = deliveries.filter(created_at__lt=started).order_by("pk")
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    created = skipped = processed = 0
    last: uuid.UUID | None = None
    while True:
        page = selected.filter(pk__gt=last) if last is not None else selected
        rows = list(
            page.values_list("pk", "event_id", "subscription_id", "kind", "status")[
                :REPLAY_CHUNK
            ]
        )
        if not rows:
            break
        last = rows[-1][0]
        made = _replay_chunk(rows, seen)
        created += made
        skipped += len(rows) - made
        processed += len(rows)
        if on_progress is not None:
            on_progress(processed)
        if len(rows) < REPLAY_CHUNK:
            break
    return ReplayResult(created=created, skipped=skipped)


def _replay_chunk(
    rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID | None, str, str]],
    seen: set[tuple[uuid.UUID, uuid.UUID]],
) -> int:
    now = timezone.now()
    candidates = [
        (event_id, subscription_id)
        for _, event_id, subscription_id, kind, status in rows
        if subscription_id is not None
        and kind == Delivery.Kind.EVENT
        and status not in Delivery.UNFINISHED
    ]
    with transaction.atomic():
        live = _live_subscriptions({sid for _, sid in candidates}, now=now)
        busy = _unfinished_pairs(candidates)
        new = []
        for event_id, subscription_id in candidates:
            pair = (event_id, subscription_id)
            if subscription_id not in live or pair in busy or pair in seen:
                continue
            seen.add(pair)
            new.append(
                Delivery(
                    event_id=event_id,
                    subscription_id=subscription_id,
                    client_id=live[subscription_id][0],
                    kind=Delivery.Kind.EVENT,
                    status=Delivery.Status.PENDING,
                    next_attempt_at=now,
                    expires_at=now + live[subscription_id][1],
                )
            )
        Delivery.objects.bulk_create(new)
        if new:
            count = len(new)
            transaction.on_commit(lambda: wake_workers_now(due_count=count))
    return len(new)


def _live_subscriptions(
    ids: set[uuid.UUID], *, now: datetime
) -> dict[uuid.UUID, tuple[int, timedelta]]:
    """subscription id -> (client id, delivery TTL), for the active, unexpired
    ones."""
    if not ids:
        return {}
    live = Subscription.objects.filter(
        id__in=ids, status=Subscription.Status.ACTIVE, expires_at__gt=now
    )
    return {
        sid: (client_id, ttl or settings.WEBHOOK_DELIVERY_TTL)
        for sid, client_id, ttl in live.values_list("id", "client_id", "delivery_ttl")
    }


def _unfinished_pairs(
    pairs: list[tuple[uuid.UUID, uuid.UUID]],
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    if not pairs:
        return set()
    # The partial index delivery_sub_unfinished serves this lookup.
    rows = Delivery.objects.filter(
        subscription_id__in={sid for _, sid in pairs},
        event_id__in={eid for eid, _ in pairs},
        status__in=Delivery.UNFINISHED,
    ).values_list("event_id", "subscription_id")
    return set(rows)
