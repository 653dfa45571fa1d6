"""Delivery services: the writes of the delivery app that others call.

Other apps call the first five (their signatures are a contract): the
subscriptions app when a webhook is resumed, paused or deleted, publishing
(events.services) to create deliveries and wake the workers. Views, the admin
and beat's tasks call the rest. The pipeline that sends deliveries lives in
delivery/pipeline/ (claiming, engine, recording), its rules in
delivery/policy/ and the code that makes requests in delivery/sender/.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from delivery.models import Breaker, Delivery
from delivery.pipeline import counting, notifications, wakeups
from delivery.pipeline.notifications import Notice
from events.models import Event
from events.selectors import reaches
from subscriptions.models import Subscription

logger = logging.getLogger("webhooks.delivery")

TEST_EVENT_TYPE = "TEST"
# Sweeps touch at most this many rows per statement, so none holds locks long.
SWEEP_CHUNK = 5000
SWEEP_MAX_CHUNKS = 100


def notify(notices: Iterable[Notice]) -> int:
    """Operational notifications of these transitions (to the operator and the
    clients: delivery/pipeline/notifications.py). Call inside the transaction
    that makes them, so each is sent once, and only if it commits."""
    return notifications.notify(notices)


def _notify_expired(rows: QuerySet[Delivery], ids: Sequence[UUID]) -> None:
    """`delivery.exhausted` for the event deliveries among `ids` that `rows`
    (already filtered to the expired ones) holds."""
    expired = rows.filter(
        id__in=ids, kind=Delivery.Kind.EVENT, subscription_id__isnull=False
    ).values_list(
        "id", "subscription_id", "client_id", "last_status_code", "last_error"
    )
    notify(
        Notice(
            type=notifications.EXHAUSTED,
            webhook_id=webhook_id,
            client_id=client_id,
            reason=f"expired: {last_error or 'its TTL ran out'}",
            last_status_code=last_status_code,
            delivery_id=delivery_id,
        )
        for delivery_id, webhook_id, client_id, last_status_code, last_error in expired
    )


class DeliveryNotRetriable(Exception):
    """retry_delivery() refused: the delivery cannot be sent again (the API's 409)."""


def release_held_deliveries(*, subscription_id: UUID) -> int:
    """Make a resumed subscription's held deliveries due now; expire those past TTL.

    Returns how many were released. Call inside the resume transaction; the
    workers are woken when it commits.
    """
    now = timezone.now()
    held = Delivery.objects.filter(
        subscription_id=subscription_id, status=Delivery.Status.HELD
    )
    overdue = list(held.filter(expires_at__lte=now).values_list("id", flat=True))
    expired = held.filter(id__in=overdue).update(
        status=Delivery.Status.EXPIRED,
        next_attempt_at=None,
        lease_token=None,
        updated_at=now,
    )
    _notify_expired(Delivery.objects.filter(status=Delivery.Status.EXPIRED), overdue)
    counting.count_finished({Delivery.Status.EXPIRED: expired})
    released = held.update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now,
        lease_token=None,
        updated_at=now,
    )
    if released:
        transaction.on_commit(lambda: wake_workers_now(due_count=released))
    return released


def hold_pending_deliveries(*, subscription_id: UUID) -> int:
    """Hold a paused subscription's pending deliveries (no request while paused).

    A delivery in flight keeps its claim; recording its outcome holds it too.
    Rows another transaction is writing right now (a worker recording their
    outcome) are skipped, not waited for: a worker pausing the subscription
    from its own flush holds the subscription's row, and the writer may be
    waiting for that row (a deadlock). Those rows are in flight; recording
    them, or their next claim, holds them. Returns how many were held.
    """
    pending = Delivery.objects.filter(
        subscription_id=subscription_id, status=Delivery.Status.PENDING
    )
    if connection.vendor == "postgresql":
        unlocked = pending.select_for_update(skip_locked=True).values("id")
        pending = Delivery.objects.filter(id__in=unlocked)
    return pending.update(status=Delivery.Status.HELD, updated_at=timezone.now())


def cancel_unfinished_deliveries(*, subscription_id: UUID) -> int:
    """Cancel a subscription's pending and held deliveries (before it is deleted).

    Clearing the lease means a request in flight is still recorded as an
    attempt but no longer changes the delivery.
    """
    cancelled = Delivery.objects.filter(
        subscription_id=subscription_id, status__in=Delivery.UNFINISHED
    ).update(
        status=Delivery.Status.CANCELLED,
        next_attempt_at=None,
        lease_token=None,
        updated_at=timezone.now(),
    )
    counting.count_finished({Delivery.Status.CANCELLED: cancelled})
    return cancelled


@dataclass(frozen=True)
class CreatedDeliveries:
    total: int
    # Of which pending and due now (the rest are held): what wake-ups are for.
    due: int


def create_deliveries(
    *, event: Event, subscriptions: QuerySet[Subscription]
) -> CreatedDeliveries:
    """Insert one Delivery per subscription for the event; return how many.

    Deliveries to paused subscriptions are created `held`, the others
    `pending` and due now, expiring the subscription's delivery TTL
    (Subscription.effective_delivery_ttl) after the event was published.
    A subscription listed twice by the queryset gets one delivery.
    Call inside the publish transaction, then wake_workers() on commit.
    On PostgreSQL this is one INSERT … SELECT, however many subscriptions match.
    """
    return create_deliveries_for(events=[event], subscriptions=subscriptions)[event.id]


def create_deliveries_for(
    *, events: Sequence[Event], subscriptions: QuerySet[Subscription]
) -> dict[UUID, CreatedDeliveries]:
    """create_deliveries() for several events published together (the same
    created_at, tenant, type and subtype) and the subscriptions
    matching_subscriptions() found for all of them: each event gets those it
    reaches (events.selectors.reaches: by trackingId); a lone event gets every
    one. One entry per event. On PostgreSQL still one INSERT … SELECT."""
    published_at = events[0].created_at
    if any(event.created_at != published_at for event in events):
        raise ValueError("events published together share their created_at")
    chosen = subscriptions.order_by().values(
        "id", "client_id", "status", "tracking_id", "delivery_ttl"
    )
    if connection.vendor == "postgresql":
        insert = _insert_deliveries_postgresql
    else:
        insert = _insert_deliveries_portable
    created = insert(events, chosen, published_at)
    none = CreatedDeliveries(total=0, due=0)
    return {event.id: created.get(event.id, none) for event in events}


def _insert_deliveries_portable(
    events: Sequence[Event],
    chosen: QuerySet,
    published_at: datetime,
) -> dict[UUID, CreatedDeliveries]:
    targets = {row["id"]: row for row in chosen}.values()  # each one once
    tenant_event = events[0].tenant_id is not None
    rows = []
    for event in events:
        for target in targets:
            if len(events) > 1 and not reaches(
                tenant_event=tenant_event,
                resource_id=event.resource_id,
                tracking_id=target["tracking_id"],
            ):
                continue
            paused = target["status"] in Subscription.HOLDING
            rows.append(
                Delivery(
                    event_id=event.id,
                    subscription_id=target["id"],
                    client_id=target["client_id"],
                    status=Delivery.Status.HELD if paused else Delivery.Status.PENDING,
                    next_attempt_at=None if paused else published_at,
                    expires_at=published_at
                    + (target["delivery_ttl"] or settings.WEBHOOK_DELIVERY_TTL),
                )
            )
    Delivery.objects.bulk_create(rows, batch_size=2000)
    created: dict[UUID, CreatedDeliveries] = {}
    for row in rows:
        counts = created.get(row.event_id, CreatedDeliveries(total=0, due=0))
        due = counts.due + (row.status == Delivery.Status.PENDING)
        created[row.event_id] = CreatedDeliveries(total=counts.total + 1, due=due)
    return created


def _insert_deliveries_postgresql(
    events: Sequence[Event],
    chosen: QuerySet,
    published_at: datetime,
) -> dict[UUID, CreatedDeliveries]:
    try:
        select_sql, select_params = chosen.query.sql_with_params()
    except EmptyResultSet:  # e.g. .none(): nothing can match
        return {}
    insert_sql, params = deliveries_insert_sql(
        events_sql="unnest(%s::uuid[], %s::text[]) AS e (id, resource_id)",
        events_params=[
            [str(event.id) for event in events],
            [event.resource_id for event in events],
        ],
        subscriptions_sql=(
            "SELECT DISTINCT u.id, u.client_id, u.status, u.tracking_id, "
            "u.delivery_ttl "
            f"FROM ({select_sql}) u"
        ),
        subscriptions_params=list(select_params),
        published_at=published_at,
        lone=len(events) == 1,
        tenant_event=events[0].tenant_id is not None,
    )
    # Counted in SQL: a fan-out to 10,000 returns one row, not 10,000.
    sql = (
        f"WITH created AS ({insert_sql}) "
        "SELECT event_id, count(*), count(*) FILTER (WHERE due) "
        "FROM created GROUP BY event_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {
            event_id: CreatedDeliveries(total=total, due=due)
            for event_id, total, due in cursor.fetchall()
        }


def deliveries_insert_sql(
    *,
    events_sql: str,
    events_params: Sequence[object],
    subscriptions_sql: str,
    subscriptions_params: Sequence[object],
    published_at: datetime,
    lone: bool,
    tenant_event: bool,
) -> tuple[str, list[object]]:
    """The PostgreSQL INSERT … SELECT of the deliveries of some events to the
    subscriptions that reach them, and its parameters: what create_deliveries
    writes, as one statement that publishing can put in a CTE after the
    INSERT of its events (one round trip for both).

    `events_sql` is a FROM item named `e` with columns (id, resource_id),
    the events published together at `published_at` (same tenant, type and
    subtype); `subscriptions_sql` a SELECT of (id, client_id, status,
    tracking_id, delivery_ttl), each subscription once. Each event gets the
    subscriptions it reaches (events.selectors.reaches: by trackingId), or
    every one when it is `lone`. Deliveries to paused or disabled
    subscriptions are `held`, the others `pending` and due at `published_at`;
    each expires its subscription's delivery_ttl after it (WEBHOOK_DELIVERY_TTL
    where that is null).
    RETURNING event_id, subscription_id, due (one row per delivery; due:
    created pending, not held).
    """
    table = connection.ops.quote_name(Delivery._meta.db_table)
    now = timezone.now()
    sql = (
        f"INSERT INTO {table} (id, event_id, subscription_id, client_id, kind, "
        "status, attempts_count, backoff_step, next_attempt_at, lease_token, "
        "expires_at, created_at, updated_at, delivered_at, last_status_code, "
        "last_error) "
        # Typed where the context does not say (webhooks_project/prepared.py).
        "SELECT gen_random_uuid(), e.id, s.id, s.client_id, %s::text, "
        # Routing returns live webhooks only: any but active holds (paused,
        # disabled).
        "CASE WHEN s.status <> %s THEN %s::text ELSE %s::text END, 0, 0, "
        "CASE WHEN s.status <> %s THEN NULL ELSE %s::timestamptz END, NULL, "
        # The webhook's own TTL, computed in the statement: still one INSERT
        # however many webhooks (with however many TTLs) the event reaches.
        "%s::timestamptz + COALESCE(s.delivery_ttl, %s::interval), "
        "%s::timestamptz, %s::timestamptz, NULL, NULL, '' "
        f"FROM {events_sql} JOIN ({subscriptions_sql}) s "
        # events.selectors.reaches(), or every subscription for a lone event.
        "ON %s::boolean OR (%s::boolean AND COALESCE(s.tracking_id, '') = '') "
        "OR s.tracking_id = e.resource_id "
        "RETURNING event_id, subscription_id, status = %s AS due"
    )
    active = Subscription.Status.ACTIVE
    params = [
        Delivery.Kind.EVENT,
        active,
        Delivery.Status.HELD,
        Delivery.Status.PENDING,
        active,
        published_at,
        published_at,
        settings.WEBHOOK_DELIVERY_TTL,
        now,
        now,
        *events_params,
        *subscriptions_params,
        lone,
        tenant_event,
        Delivery.Status.PENDING,
    ]
    return sql, params


def wake_workers(*, due_count: int) -> None:
    """Have enough deliver_due wake-ups sent for `due_count` newly due
    deliveries.

    Call from transaction.on_commit. Returns at once: the process's wake-up
    sender sends them, coalesced with those of other publishes in flight
    (delivery/pipeline/wakeups.py). Never raises; with the broker down it
    logs a warning, and dispatch_due finds the rows later.
    """
    wakeups.wake(due_count=due_count)


def wake_workers_now(*, due_count: int) -> None:
    """wake_workers(), sent before returning: for an operator's action
    (resume, retry, replay, a test delivery), one at a time, whose process may
    end right after. Never raises; waits at most the broker's connect
    timeout."""
    wakeups.send_wakeups(count=wakeups.wakeups_for(due_count))


def expire_overdue_deliveries() -> int:
    """Pending and held deliveries past expires_at become `expired` (not those
    whose request is in flight right now: recording them decides). Returns how
    many."""
    now = timezone.now()
    in_flight = Q(lease_token__isnull=False, next_attempt_at__gt=now)
    overdue = Delivery.objects.filter(
        status__in=Delivery.UNFINISHED, expires_at__lte=now
    ).exclude(in_flight)
    expired = _in_chunks(
        overdue,
        then=partial(
            _notify_expired,
            Delivery.objects.filter(status=Delivery.Status.EXPIRED, updated_at=now),
        ),
        status=Delivery.Status.EXPIRED,
        next_attempt_at=None,
        lease_token=None,
        updated_at=now,
    )
    counting.count_finished({Delivery.Status.EXPIRED: expired})
    return expired


def _in_chunks(
    rows: QuerySet[Delivery],
    then: Callable[[list[UUID]], None] | None = None,
    **changes: object,
) -> int:
    """Update `rows` a chunk at a time; then(ids) after each chunk, in its
    transaction."""
    total = 0
    for _ in range(SWEEP_MAX_CHUNKS):
        ids = list(rows.values_list("id", flat=True)[:SWEEP_CHUNK])
        if not ids:
            break
        with transaction.atomic():
            total += rows.filter(id__in=ids).update(**changes)
            if then is not None:
                then(ids)
        if len(ids) < SWEEP_CHUNK:
            break
    return total


def send_test_delivery(*, subscription: Subscription) -> Delivery:
    """Create a TEST event for the subscription's client and one `test`
    delivery of it, due now, sent once with no retry (also while the
    subscription is paused). Workers are woken on commit."""
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            publisher_id=subscription.client_id,
            tenant_id=subscription.client_id,
            type=TEST_EVENT_TYPE,
            resource_id=subscription.tracking_id,
            payload={"test": True},
            occurred_at=now,
            created_at=now,
        )
        delivery = Delivery.objects.create(
            event=event,
            subscription=subscription,
            client_id=subscription.client_id,
            kind=Delivery.Kind.TEST,
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            expires_at=now + subscription.effective_delivery_ttl,
        )
        transaction.on_commit(lambda: wake_workers_now(due_count=1))
    return delivery


def retry_delivery(*, delivery_id: UUID) -> Delivery:
    """Send a delivery again now, as a new attempt with a fresh TTL (its
    webhook's) and the backoff table from the start.

    Accepts `failed`, `expired`, `cancelled` and `pending` deliveries; one
    whose request is in flight right now only gets the fresh TTL. Raises
    Delivery.DoesNotExist, or DeliveryNotRetriable when it already
    `succeeded`, is `held`, or its webhook is paused or deleted.
    """
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("subscription")
            .get(pk=delivery_id)
        )
        _check_retriable(delivery)
        ttl = delivery.subscription.effective_delivery_ttl
        changes: dict[str, object] = {"expires_at": now + ttl, "updated_at": now}
        in_flight = (
            delivery.status == Delivery.Status.PENDING
            and delivery.lease_token is not None
            and delivery.next_attempt_at is not None
            and delivery.next_attempt_at > now
        )
        if not in_flight:
            changes = _due_again(now, ttl=ttl)
        Delivery.objects.filter(pk=delivery.pk).update(**changes)
        if not in_flight:
            transaction.on_commit(lambda: wake_workers_now(due_count=1))
    delivery.refresh_from_db()
    return delivery


def _due_again(now: datetime, *, ttl: timedelta) -> dict[str, object]:
    """What retrying changes on a delivery that is not in flight: due now,
    a fresh TTL (`ttl`: its webhook's), the backoff table from the start."""
    return {
        "status": Delivery.Status.PENDING,
        "next_attempt_at": now,
        "backoff_step": 0,
        "lease_token": None,
        "expires_at": now + ttl,
        "updated_at": now,
    }


# POST /api/v1/deliveries/bulk-retry: the most deliveries one call retries
# (ids given, or matched by its filter), so one request stays one short
# transaction.
BULK_RETRY_MAX = 10_000
# What bulk retry sends again: finished without success. A pending or held
# delivery will be sent anyway and a succeeded one is never retried (as
# retry_delivery), so repeating a bulk retry sends nothing twice.
BULK_RETRY_STATUSES = (
    Delivery.Status.FAILED,
    Delivery.Status.EXPIRED,
    Delivery.Status.CANCELLED,
)
BULK_RETRY_DEFAULT_STATUSES = (Delivery.Status.FAILED, Delivery.Status.EXPIRED)


class TooManyDeliveries(Exception):
    """More deliveries than one call may touch (the API's 400)."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"more than {cap} deliveries match; narrow since/until")
        self.cap = cap

    @property
    def message(self) -> str:
        """The 400's message on the field that selected too many (API and portal)."""
        return f"more than {self.cap} deliveries match (the most one call takes)"


@dataclass(frozen=True)
class BulkRetryResult:
    retried: int
    skipped: int


def retry_deliveries(
    *,
    client_id: int,
    statuses: Sequence[str] = BULK_RETRY_DEFAULT_STATUSES,
    ids: Iterable[UUID] | None = None,
    subscription_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> BulkRetryResult:
    """retry_delivery() for many of one client's deliveries at once: by
    `ids`, or those of one subscription created in [since, until), whose
    status is in `statuses` (a subset of BULK_RETRY_STATUSES).

    Skipped (counted, never touched): ids that are not the client's or do
    not exist, deliveries in another status, `test` deliveries, and those
    whose webhook is deleted, paused or expired. Raises TooManyDeliveries
    when more than BULK_RETRY_MAX are given or match. The UPDATE re-checks
    the status, so two identical calls at once retry each delivery once.
    Workers are woken on commit.
    """
    now = timezone.now()
    rows = Delivery.objects.filter(client_id=client_id)
    if ids is not None:
        wanted = set(ids)
        if len(wanted) > BULK_RETRY_MAX:
            raise TooManyDeliveries(BULK_RETRY_MAX)
        rows = rows.filter(pk__in=wanted, status__in=statuses)
    else:
        rows = rows.filter(subscription_id=subscription_id, status__in=statuses)
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        if until is not None:
            rows = rows.filter(created_at__lt=until)
    with transaction.atomic():
        matched = list(rows.values_list("pk", flat=True)[: BULK_RETRY_MAX + 1])
        if ids is None and len(matched) > BULK_RETRY_MAX:
            raise TooManyDeliveries(BULK_RETRY_MAX)
        eligible = Delivery.objects.filter(
            pk__in=matched,
            kind=Delivery.Kind.EVENT,
            subscription__status=Subscription.Status.ACTIVE,
            subscription__expires_at__gt=now,
        ).values_list("pk", "subscription__delivery_ttl")
        # One UPDATE per distinct webhook TTL (few: most webhooks keep the
        # default), so each delivery's fresh TTL is its own webhook's.
        by_ttl: dict[timedelta, list[UUID]] = {}
        for pk, own_ttl in eligible:
            ttl = own_ttl or settings.WEBHOOK_DELIVERY_TTL
            by_ttl.setdefault(ttl, []).append(pk)
        retried = 0
        for ttl, pks in by_ttl.items():
            # Conditions on the row itself, so a concurrent twin's UPDATE sees
            # them re-checked on the committed row and changes nothing.
            retried += Delivery.objects.filter(pk__in=pks, status__in=statuses).update(
                **_due_again(now, ttl=ttl)
            )
        if retried:
            transaction.on_commit(lambda: wake_workers_now(due_count=retried))
    considered = len(wanted) if ids is not None else len(matched)
    return BulkRetryResult(retried=retried, skipped=considered - retried)


def _check_retriable(delivery: Delivery) -> None:
    if delivery.status == Delivery.Status.SUCCEEDED:
        raise DeliveryNotRetriable("The delivery already succeeded.")
    if delivery.status == Delivery.Status.HELD:
        raise DeliveryNotRetriable(
            "The delivery is held because its webhook is paused; resume the webhook."
        )
    subscription = delivery.subscription
    if subscription is None:
        raise DeliveryNotRetriable("The webhook of this delivery was deleted.")
    if subscription.status in Subscription.HOLDING:
        raise DeliveryNotRetriable(
            f"The webhook is {subscription.status}; resume it first."
        )


def close_breakers(*, destinations: Iterable[str]) -> int:
    """Forget the failures of these destinations, and any Retry-After they
    asked for (an operator's decision after fixing an endpoint); returns how
    many breakers were closed."""
    return Breaker.objects.filter(destination__in=list(destinations)).update(
        consecutive_failures=0,
        open_until=None,
        backpressure_until=None,
        updated_at=timezone.now(),
    )
