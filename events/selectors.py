"""Named reads of the events app: routing, the event log, the type catalogue."""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, Case, Count, Q, QuerySet, When
from django.db.models.expressions import RawSQL

from events.models import Event, EventType
from subscriptions.models import ApiKey, Client, Subscription, SubscriptionFilter
from webhooks_project.cursors import encode_cursor
from webhooks_project.ids import parse_public_id

# Quoted alike by PostgreSQL and SQLite.
_SUBSCRIPTION = f'"{Subscription._meta.db_table}"'
_FILTER = f'"{SubscriptionFilter._meta.db_table}"'


# What GET /api/v1/events/{id} shows of each delivery.
_DELIVERY_LOG_FIELDS = (
    "id",
    "subscription_id",
    "status",
    "attempts_count",
    "last_status_code",
    "last_error",
)


def matching_subscriptions(event: Event, *others: Event) -> QuerySet[Subscription]:
    """The subscriptions an event is delivered to (docs/spec.md, "Events").

    - a tenant event reaches only that tenant's subscriptions, those without a
      trackingId and those tracking the event's resource_id;
    - a public event reaches only subscriptions (of any client) tracking its
      resource_id, and none when it has no resource_id;
    - a subscription matches when one of its event groups names the event's
      type, with no subtype or with the event's subtype;
    - it is live (active, or paused: it gets a held delivery), not past its
      expiry, and was created no later than the event was published.

    With `others` (published together, with the same tenant, type and subtype
    but about other resources): the subscriptions any of them reaches. Which
    event reaches which is then `reaches()` of the event and the subscription:
    by trackingId (create_deliveries_for pairs them so).

    The condition is routing_condition(), the one publishing puts in its
    INSERT … SELECT. Events that can reach nobody get `.none()`.
    """
    condition = routing_condition(
        tenant_id=event.tenant_id,
        type=event.type,
        subtype=event.subtype,
        resource_ids=[e.resource_id for e in (event, *others)],
        published_at=event.created_at,
    )
    if condition is None:
        return Subscription.objects.none()
    sql, params = condition
    where = RawSQL(sql, params, output_field=BooleanField())
    return Subscription.objects.filter(where).order_by()


def routing_condition(
    *,
    tenant_id: int | None,
    type: str,
    subtype: str | None,
    resource_ids: Iterable[str | None],
    published_at: datetime,
) -> tuple[str, list[Any]] | None:
    """The SQL condition on a subscriptions row (the table by its own name)
    that matching_subscriptions() means, with its parameters, for events of
    one tenant (None: public), type and subtype about `resource_ids`,
    published at `published_at`; None when such events reach nobody.

    Hand-written once, so publishing neither compiles a queryset per event
    (~1 ms) nor keeps a second copy of the rules.

    The type filter is an EXISTS subquery, so a subscription with several
    matching groups matches once and the result can feed an INSERT … SELECT.
    Wrapped in COALESCE it stays a subplan on PostgreSQL: one hashed scan of
    the type's filters, or one index probe per subscription, linear whatever
    the table statistics say. A bare WHERE EXISTS becomes a semi-join planned
    from statistics, and right after a burst of new subscriptions (not yet
    analysed) PostgreSQL picks a nested loop comparing every filter row with
    every subscription: 8 s instead of 10 ms for 10,000 of them.
    """
    resources = sorted({r for r in resource_ids if r})
    tracked = f"{_SUBSCRIPTION}.tracking_id IN ({', '.join(['%s'] * len(resources))})"
    if tenant_id is not None:
        audience = (
            f"{_SUBSCRIPTION}.client_id = %s AND ({_SUBSCRIPTION}.tracking_id IS "
            f"NULL OR {_SUBSCRIPTION}.tracking_id = ''"
            + (f" OR {tracked})" if resources else ")")
        )
        audience_params: list[Any] = [tenant_id, *resources]
    elif resources:
        audience, audience_params = tracked, list(resources)
    else:
        return None
    published = connection.ops.adapt_datetimefield_value(published_at)
    sql = (
        f"{_SUBSCRIPTION}.status IN (%s, %s, %s) AND {_SUBSCRIPTION}.expires_at > %s "
        f"AND {_SUBSCRIPTION}.created_at <= %s AND {audience} AND COALESCE(EXISTS "
        f"(SELECT 1 FROM {_FILTER} f WHERE f.subscription_id = {_SUBSCRIPTION}.id "
        "AND f.event_type = %s AND f.subtype IN (%s, %s)), FALSE)"
    )
    params = [
        Subscription.Status.ACTIVE,
        *Subscription.HOLDING,
        published,
        published,
        *audience_params,
        type,
        "",
        subtype or "",
    ]
    return sql, params


def reaches(*, tenant_event: bool, resource_id: str | None, tracking_id: str | None):
    """Whether a subscription that matching_subscriptions() returned for a
    group of events reaches the one about `resource_id`."""
    if tenant_event and not tracking_id:
        return True
    return resource_id is not None and tracking_id == resource_id


def published_under(
    *, publisher: Client, keys: Collection[str]
) -> dict[str, tuple[Event, int]]:
    """The publisher's events published under these idempotency keys, by
    key, each with how many deliveries it has (one query)."""
    events = Event.objects.filter(
        publisher=publisher, idempotency_key__in=set(keys)
    ).annotate(delivery_count=Count("deliveries"))
    return {event.idempotency_key: (event, event.delivery_count) for event in events}


def count_deliveries(*, event: Event, due_only: bool = False) -> int:
    """How many deliveries the event has (only those pending, with due_only)."""
    deliveries = event.deliveries.all()
    if due_only:
        deliveries = deliveries.filter(status="pending")
    return deliveries.count()


@dataclass(frozen=True)
class EventLog:
    event: Event
    # One dict per delivery, keys as _DELIVERY_LOG_FIELDS.
    deliveries: list[dict[str, Any]]


def event_log(
    *, event_id: str, client: Client, scopes: Collection[str]
) -> EventLog | None:
    """The event named `event_id` and the deliveries of it that this API key
    may see, or None (the API's 404).

    `event_id` is our UUID or the publisher's own `id` (its idempotency key),
    looked up only among the events the caller may see. Our UUID wins: a
    string that is both is first tried as ours, then as a publisher's id
    (docs/api.md, "Event lookup by the publisher's id").
    """
    our_id = parse_public_id(event_id)
    if our_id is not None:
        event = Event.objects.select_related("tenant").filter(pk=our_id).first()
        log = _visible_log(event, client=client, scopes=scopes)
        if log is not None:
            return log
    event = _by_publisher_id(event_id, client=client, scopes=scopes)
    return _visible_log(event, client=client, scopes=scopes)


def _by_publisher_id(
    publisher_id: str, *, client: Client, scopes: Collection[str]
) -> Event | None:
    """The caller's event with this publisher's id: the one it published
    itself (unique per publisher), else the newest with a delivery to its
    webhooks (two publishers may have used the same id; one query)."""
    too_long = len(publisher_id) > Event._meta.get_field("idempotency_key").max_length
    # No id was published with a NUL (PostgreSQL text cannot hold one).
    if too_long or "\x00" in publisher_id:
        return None
    visible = Q()
    if ApiKey.Scope.PUBLISH in scopes:
        visible |= Q(publisher=client)
    if ApiKey.Scope.SUBSCRIPTIONS in scopes:
        # A join (an event row per delivery; .first() takes one): the
        # idempotency key's index finds the few candidates first.
        visible |= Q(deliveries__client=client)
    if not visible:
        return None
    own = Case(When(publisher=client, then=0), default=1)
    return (
        Event.objects.select_related("tenant")
        .filter(visible, idempotency_key=publisher_id)
        .order_by(own, "-created_at", "-id")
        .first()
    )


def _visible_log(
    event: Event | None, *, client: Client, scopes: Collection[str]
) -> EventLog | None:
    """A publish key sees every delivery of the events its client published;
    a subscriptions key sees its client's own deliveries; a key with both sees
    the union. None when the key may see nothing of the event: someone else's
    event, or one with no delivery of the caller's."""
    if event is None:
        return None
    deliveries = event.deliveries.order_by("created_at", "id")
    if ApiKey.Scope.PUBLISH in scopes and event.publisher_id == client.pk:
        rows = list(deliveries.values(*_DELIVERY_LOG_FIELDS))
    elif ApiKey.Scope.SUBSCRIPTIONS in scopes:
        rows = list(deliveries.filter(client=client).values(*_DELIVERY_LOG_FIELDS))
        if not rows:
            return None
    else:
        return None
    return EventLog(event=event, deliveries=rows)


def list_event_types() -> QuerySet[EventType]:
    """The whole catalogue, by name."""
    return EventType.objects.order_by("name")


# GET /api/v1/events?status=: the API's four values -> the deliveries'
# statuses. A held delivery will be sent once its webhook is resumed: pending.
# Cancelled (its webhook was deleted) has no filter value; it is counted.
EVENT_LIST_STATUSES: dict[str, tuple[str, ...]] = {
    "failed": ("failed",),
    "expired": ("expired",),
    "pending": ("pending", "held"),
    "succeeded": ("succeeded",),
}
# The counts of each event's summary, one per delivery status.
SUMMARY_STATUSES = ("pending", "held", "succeeded", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class EventSummary:
    event: Event
    # "total" and one count per SUMMARY_STATUSES of the deliveries the key sees.
    deliveries: dict[str, int]


def list_events(
    *,
    client: Client,
    scopes: Collection[str],
    limit: int,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    resource_id: str | None = None,
    status: str | None = None,
    before: tuple[datetime, UUID] | None = None,
) -> list[EventSummary]:
    """A page of the events this API key may see, newest first (created_at,
    then id), each with a count by status of the deliveries it sees of it.

    Who sees what is as in event_log(): a publish key its client's events and
    every delivery of them; a subscriptions key the events with at least one
    delivery to its client's webhooks, and only those deliveries; a key with
    both, the union. `since` is inclusive, `until` exclusive (on the event's
    `created_at`); `status` (an EVENT_LIST_STATUSES key) keeps the events with
    at least one such visible delivery; `before` is the (created_at, id) of
    the last row of the previous page. Returns up to limit + 1 rows: the extra
    one says there is a next page. Two queries: the page, then the counts.

    Through the `deliveries` relation, as event_log() does: the events app
    reads deliveries but does not import the delivery app (docs/architecture.md).
    """
    visible = _visible_deliveries(client=client, scopes=scopes)
    if visible is None:
        return []
    reached = Event.objects.filter(visible).values("pk")
    events = Event.objects.filter(pk__in=reached)
    if ApiKey.Scope.PUBLISH in scopes:
        # Not only through `reached`: a publisher's events that reached nobody.
        events = Event.objects.filter(Q(publisher=client) | Q(pk__in=reached))
    if status is not None:
        with_status = Event.objects.filter(
            visible, deliveries__status__in=EVENT_LIST_STATUSES[status]
        ).values("pk")
        events = events.filter(pk__in=with_status)
    if type:
        events = events.filter(type=type)
    if resource_id:
        events = events.filter(resource_id=resource_id)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    if before is not None:
        created_at, event_id = before
        events = events.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=event_id)
        )
    page = list(
        events.select_related("tenant").order_by("-created_at", "-id")[: limit + 1]
    )
    counts = _delivery_counts(visible, [event.pk for event in page])
    return [
        EventSummary(event=event, deliveries=counts.get(event.pk, _no_deliveries()))
        for event in page
    ]


def _visible_deliveries(*, client: Client, scopes: Collection[str]) -> Q | None:
    """The condition, on Event rows joined to their deliveries, of the
    deliveries this key sees (None: none)."""
    conditions = []
    if ApiKey.Scope.PUBLISH in scopes:
        conditions.append(Q(publisher=client, deliveries__isnull=False))
    if ApiKey.Scope.SUBSCRIPTIONS in scopes:
        conditions.append(Q(deliveries__client=client))
    if not conditions:
        return None
    # One Q, so one join: each condition is about the same delivery row.
    condition = conditions[0]
    for other in conditions[1:]:
        condition |= other
    return condition


def _no_deliveries() -> dict[str, int]:
    return {"total": 0, **dict.fromkeys(SUMMARY_STATUSES, 0)}


def _delivery_counts(visible: Q, event_ids: list[UUID]) -> dict[UUID, dict[str, int]]:
    if not event_ids:
        return {}
    rows = (
        Event.objects.filter(visible, pk__in=event_ids)
        .values_list("pk", "deliveries__status")
        .annotate(n=Count("deliveries__id"))
        .order_by()
    )
    counts: dict[UUID, dict[str, int]] = {}
    for event_id, delivery_status, n in rows:
        summary = counts.setdefault(event_id, _no_deliveries())
        summary[delivery_status] = summary.get(delivery_status, 0) + n
        summary["total"] += n
    return counts


def events_page(
    *, client: Client, scopes: Collection[str], limit: int, query: dict[str, Any]
) -> tuple[list[EventSummary], str | None]:
    """One page of list_events() from a validated EventListQuerySerializer
    (its `limit` ignored: the caller's), and the cursor of the next page (None
    at the end). Shared by GET /api/v1/events and the portal's events page."""
    rows = list_events(
        client=client,
        scopes=scopes,
        limit=limit,
        type=query.get("type"),
        since=query.get("since"),
        until=query.get("until"),
        resource_id=query.get("resource_id"),
        status=query.get("status"),
        before=query.get("cursor"),
    )
    page = rows[:limit]
    cursor = None
    if len(rows) > limit:
        cursor = encode_cursor(page[-1].event.created_at, page[-1].event.id)
    return page, cursor
