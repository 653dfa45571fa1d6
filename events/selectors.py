"""Named reads of the events app: routing, the event log, the type catalogue."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from events.models import Event, EventType
from subscriptions.models import ApiKey, Client, Subscription, SubscriptionFilter

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

    The type filter is an EXISTS subquery, so a subscription with several
    matching groups matches once and the result can feed an INSERT … SELECT.
    Events that can reach nobody get `.none()` (an EmptyQuerySet).
    """
    published_at = event.created_at
    subtypes = [""] if not event.subtype else ["", event.subtype]
    resources = {e.resource_id for e in (event, *others) if e.resource_id}
    listens = SubscriptionFilter.objects.filter(
        subscription_id=OuterRef("pk"),
        event_type=event.type,
        subtype__in=subtypes,
    )
    live = Subscription.objects.filter(
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.PAUSED],
        expires_at__gt=published_at,
        created_at__lte=published_at,
    )
    if event.tenant_id is not None:
        audience = Q(tracking_id__isnull=True) | Q(tracking_id="")
        if resources:
            audience |= Q(tracking_id__in=sorted(resources))
        routed = live.filter(audience, client_id=event.tenant_id)
    elif resources:
        routed = live.filter(tracking_id__in=sorted(resources))
    else:
        return Subscription.objects.none()
    # Wrapped in COALESCE, the EXISTS stays a subplan on PostgreSQL: one hashed
    # scan of the type's filters, or one index probe per subscription, linear
    # whatever the table statistics say. A bare WHERE EXISTS becomes a semi-join
    # planned from statistics, and right after a burst of new subscriptions (not
    # yet analysed) PostgreSQL picks a nested loop comparing every filter row
    # with every subscription: 8 s instead of 10 ms for 10,000 of them.
    return routed.filter(Coalesce(Exists(listens), False)).order_by()


def reaches(*, tenant_event: bool, resource_id: str | None, tracking_id: str | None):
    """Whether a subscription that matching_subscriptions() returned for a
    group of events reaches the one about `resource_id`."""
    if tenant_event and not tracking_id:
        return True
    return resource_id is not None and tracking_id == resource_id


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
    *, event_id: UUID, client: Client, scopes: Collection[str]
) -> EventLog | None:
    """The event and the deliveries of it that this API key may see, or None.

    A publish key sees every delivery of the events its client published; a
    subscriptions key sees its client's own deliveries; a key with both sees
    the union. None (the API's 404) when the key may see nothing of the event:
    someone else's event, or one with no delivery of the caller's.
    """
    event = Event.objects.select_related("tenant").filter(pk=event_id).first()
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
