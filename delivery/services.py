"""Delivery services. Other apps call these; they never touch delivery models."""

from uuid import UUID

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from delivery.models import Delivery
from events.models import Event
from subscriptions.models import Subscription

_UNFINISHED = [Delivery.Status.PENDING, Delivery.Status.HELD]


def release_held_deliveries(*, subscription_id: UUID) -> int:
    """Make a resumed subscription's held deliveries due now; expire those past TTL.

    Returns how many were released. Call inside the resume transaction.
    """
    now = timezone.now()
    held = Delivery.objects.filter(
        subscription_id=subscription_id, status=Delivery.Status.HELD
    )
    held.filter(expires_at__lte=now).update(
        status=Delivery.Status.EXPIRED, next_attempt_at=None
    )
    return held.update(status=Delivery.Status.PENDING, next_attempt_at=now)


def hold_pending_deliveries(*, subscription_id: UUID) -> int:
    """Hold a paused subscription's pending deliveries (no request while paused).

    A delivery in flight keeps its claim; recording its outcome holds it too.
    """
    return Delivery.objects.filter(
        subscription_id=subscription_id, status=Delivery.Status.PENDING
    ).update(status=Delivery.Status.HELD)


def cancel_unfinished_deliveries(*, subscription_id: UUID) -> int:
    """Cancel a subscription's pending and held deliveries (before it is deleted)."""
    return Delivery.objects.filter(
        subscription_id=subscription_id, status__in=_UNFINISHED
    ).update(status=Delivery.Status.CANCELLED, next_attempt_at=None, lease_token=None)


def create_deliveries(*, event: Event, subscriptions: QuerySet[Subscription]) -> int:
    """Insert one Delivery per subscription for the event; return how many.

    Deliveries to paused subscriptions are created `held`, the others
    `pending` and due now, expiring WEBHOOK_DELIVERY_TTL after the event was
    published. Call inside the publish transaction, then wake_workers() on
    commit. (Simple version: the pipeline work makes this one statement.)
    """
    expires_at = event.created_at + settings.WEBHOOK_DELIVERY_TTL
    rows = [
        Delivery(
            event_id=event.id,
            subscription_id=subscription_id,
            client_id=client_id,
            status=Delivery.Status.HELD
            if status == "paused"
            else Delivery.Status.PENDING,
            next_attempt_at=event.created_at,
            expires_at=expires_at,
        )
        for subscription_id, client_id, status in subscriptions.values_list(
            "id", "client_id", "status"
        )
    ]
    Delivery.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def wake_workers(*, due_count: int) -> None:
    """Tell workers that due_count deliveries became due (placeholder: the
    pipeline work enqueues deliver tasks here; a broker outage must not raise)."""
