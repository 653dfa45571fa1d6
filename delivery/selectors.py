"""Named reads of the delivery app."""

from datetime import datetime
from uuid import UUID

from django.db.models import Prefetch, Q, QuerySet

from delivery.models import Attempt, Delivery
from subscriptions.models import Client, Subscription
from webhooks_project.ids import parse_public_id


def _with_attempts(deliveries: QuerySet[Delivery]) -> QuerySet[Delivery]:
    return deliveries.prefetch_related(
        Prefetch("attempts", queryset=Attempt.objects.order_by("number", "id"))
    )


def get_delivery(*, client: Client, delivery_id: UUID) -> Delivery | None:
    """The client's delivery with its attempts, or None (also when another
    client's: callers answer 404 either way)."""
    return _with_attempts(
        Delivery.objects.filter(client=client, pk=delivery_id)
    ).first()


def list_deliveries(
    *,
    subscription: Subscription,
    limit: int,
    status: str | None = None,
    before: tuple[datetime, UUID] | None = None,
    event_id: str | None = None,
) -> list[Delivery]:
    """A page of the subscription's deliveries, newest first, with attempts.

    `event_id` keeps those of the event with that UUID and of the events its
    publisher published under that `id` (several publishers may reach one
    webhook with the same id: all of them are listed).
    `before` is the (created_at, id) of the last row of the previous page.
    Returns up to limit + 1 rows: the extra one says there is a next page.
    (Index `delivery_sub_created`.)
    """
    deliveries = Delivery.objects.filter(subscription=subscription)
    if status:
        deliveries = deliveries.filter(status=status)
    if event_id:
        of_event = Q(event__idempotency_key=event_id)
        if (our_id := parse_public_id(event_id)) is not None:
            of_event |= Q(event_id=our_id)
        deliveries = deliveries.filter(of_event)
    if before is not None:
        created_at, delivery_id = before
        deliveries = deliveries.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=delivery_id)
        )
    page = deliveries.order_by("-created_at", "-id")[: limit + 1]
    return list(_with_attempts(page))
